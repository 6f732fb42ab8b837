// A GEMM for the decode step: few rows of activations times a [out, in] weight matrix.
// BLAS packs all of B before multiplying, which for a handful of rows costs more memory
// traffic than the multiply itself; here B streams through once.
//
// Built once per instruction set (target_clones); the loader picks the best the CPU has.

#include "grove_kernels.h"
#include "vector16.h"

typedef float v8 __attribute__((vector_size(32)));
typedef float v4 __attribute__((vector_size(16)));
// Horizontal sum as a halving tree (16 → 8 → 4 → 1): a chain of 15 dependent scalar adds
// cost as much as the multiply loop itself at K = 256.
#define HSUM(v) ({ v16 v_ = (v); \
    v8 h_ = __builtin_shufflevector(v_, v_, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(v_, v_, 8, 9, 10, 11, 12, 13, 14, 15); \
    v4 q_ = __builtin_shufflevector(h_, h_, 0, 1, 2, 3) + __builtin_shufflevector(h_, h_, 4, 5, 6, 7); \
    (q_[0] + q_[2]) + (q_[1] + q_[3]); })

static inline void store(float *c, float value, float alpha, float beta) {
    *c = beta == 0 ? alpha * value : alpha * value + beta * *c;
}

__attribute__((target_clones("avx512f", "avx2,fma", "default")))
void grove_sgemm_skinny_nt(int M, int n0, int n1, int K, float alpha,
                           const float *A, int lda, const float *B, int ldb,
                           float beta, float *C, int ldc) {
    const int K16 = K & ~15;
    int n = n0;
    // Tiles of four output columns × four rows: per 16-float slice of K, eight loads feed
    // sixteen multiply-adds, and the four B rows stay in L1 while every row of A passes.
    for (; n + 4 <= n1; n += 4) {
        const float *b0 = B + (long)n * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
        int m = 0;
        for (; m + 4 <= M; m += 4) {
            const float *a0 = A + (long)m * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
            v16 s[4][4] = {{{0}}};
            for (int k = 0; k < K16; k += 16) {
                v16 y0 = LOAD16(b0 + k), y1 = LOAD16(b1 + k), y2 = LOAD16(b2 + k), y3 = LOAD16(b3 + k);
                v16 x;
                x = LOAD16(a0 + k); s[0][0] += x * y0; s[0][1] += x * y1; s[0][2] += x * y2; s[0][3] += x * y3;
                x = LOAD16(a1 + k); s[1][0] += x * y0; s[1][1] += x * y1; s[1][2] += x * y2; s[1][3] += x * y3;
                x = LOAD16(a2 + k); s[2][0] += x * y0; s[2][1] += x * y1; s[2][2] += x * y2; s[2][3] += x * y3;
                x = LOAD16(a3 + k); s[3][0] += x * y0; s[3][1] += x * y1; s[3][2] += x * y2; s[3][3] += x * y3;
            }
            const float *as[4] = {a0, a1, a2, a3}, *bs[4] = {b0, b1, b2, b3};
            for (int i = 0; i < 4; i++) {
                float *c = C + (long)(m + i) * ldc + n;
                for (int j = 0; j < 4; j++) {
                    float t = HSUM(s[i][j]);
                    for (int k = K16; k < K; k++) t += as[i][k] * bs[j][k];
                    store(c + j, t, alpha, beta);
                }
            }
        }
        // The last one to three rows.
        for (; m < M; m++) {
            const float *a = A + (long)m * lda;
            v16 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
            for (int k = 0; k < K16; k += 16) {
                v16 x = LOAD16(a + k);
                s0 += x * LOAD16(b0 + k);
                s1 += x * LOAD16(b1 + k);
                s2 += x * LOAD16(b2 + k);
                s3 += x * LOAD16(b3 + k);
            }
            float t0 = HSUM(s0), t1 = HSUM(s1), t2 = HSUM(s2), t3 = HSUM(s3);
            for (int k = K16; k < K; k++) {
                t0 += a[k] * b0[k]; t1 += a[k] * b1[k]; t2 += a[k] * b2[k]; t3 += a[k] * b3[k];
            }
            float *c = C + (long)m * ldc + n;
            store(c, t0, alpha, beta); store(c + 1, t1, alpha, beta);
            store(c + 2, t2, alpha, beta); store(c + 3, t3, alpha, beta);
        }
    }
    // The last one to three columns.
    for (; n < n1; n++) {
        const float *b = B + (long)n * ldb;
        for (int m = 0; m < M; m++) {
            const float *a = A + (long)m * lda;
            v16 s = {0};
            for (int k = 0; k < K16; k += 16) s += LOAD16(a + k) * LOAD16(b + k);
            float t = HSUM(s);
            for (int k = K16; k < K; k++) t += a[k] * b[k];
            store(C + (long)m * ldc + n, t, alpha, beta);
        }
    }
}

const char *grove_skinny_isa(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return "avx512f";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2";
    return "sse2";
}
