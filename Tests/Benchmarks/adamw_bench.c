// One thread's AdamW update over N parameters, float32 moments (grove_adamw) against bfloat16
// moments with stochastic rounding (grove_adamw_bf16), alternating, best of R rounds each:
//   clang -O3 -ISources/CGroveKernels/include Tests/Benchmarks/adamw_bench.c Sources/CGroveKernels/optimizer.c -o /tmp/adamw_bench
//   /tmp/adamw_bench 134515008 5     # smollm2's parameters, 5 rounds
#include "grove_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 134515008;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    float *w = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
    float *m = calloc(n, sizeof(float)), *v = calloc(n, sizeof(float));
    uint16_t *m16 = calloc(n, sizeof(uint16_t)), *v16 = calloc(n, sizeof(uint16_t));
    for (long i = 0; i < n; i++) { w[i] = 1e-3f * (float)(i % 2000 - 1000); g[i] = 1e-4f * (float)(i % 777 - 388); }
    double best[2] = {1e9, 1e9};
    for (int r = 0; r < rounds; r++) {
        for (int bf16 = 0; bf16 < 2; bf16++) {
            double t0 = now();
            if (bf16) grove_adamw_bf16(w, g, m16, v16, n, 0, 0x9E3779B9u * (uint32_t)r, 0.9f, 0.95f, 1e-5f, 0.1f, 0.05f, 1e-8f, 1);
            else grove_adamw(w, g, m, v, n, 0.9f, 0.95f, 1e-5f, 0.1f, 0.05f, 1e-8f, 1);
            double t = now() - t0;
            if (t < best[bf16]) best[bf16] = t;
            printf("round %d %s: %.1f ms\n", r, bf16 ? "bfloat16" : "float32 ", t * 1e3);
        }
    }
    printf("%ld parameters, best of %d: float32 %.1f ms (%.2f ns each), bfloat16 %.1f ms (%.2f ns each)\n", n, rounds,
           best[0] * 1e3, best[0] / n * 1e9, best[1] * 1e3, best[1] / n * 1e9);
    return 0;
}
