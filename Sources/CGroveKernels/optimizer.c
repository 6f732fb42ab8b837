// The optimizer's passes over every parameter, in C so that they vectorise: in Swift the AdamW
// loop stayed scalar (a divide and a square root per element, 5 % of the bench's GRPO step)
// and the gradient norm's float sum was one serial chain.
//
// Built once per instruction set (target_clones); the loader picks the best the CPU has.

#include "grove_kernels.h"
#include "vector16.h"

#define CLONES __attribute__((target_clones("avx512f", "avx2,fma", "default")))

// m ← β1·m + (1 − β1)·g,  v ← β2·v + (1 − β2)·g²,  w ← w·decay − lr·(m / c1) / (√(v / c2) + ε)
CLONES void grove_adamw(float *restrict w, const float *restrict g, float *restrict m, float *restrict v, long n,
                        float beta1, float beta2, float lr, float c1, float c2, float eps, float decay) {
    for (long i = 0; i < n; i++) {
        m[i] = beta1 * m[i] + (1 - beta1) * g[i];
        v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
        w[i] = w[i] * decay - lr * (m[i] / c1) / (__builtin_elementwise_sqrt(v[i] / c2) + eps);
    }
}

// Σ x²
CLONES double grove_sum_squares(const float *x, long n) { return dot16(x, x, n); }
