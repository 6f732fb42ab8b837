// The decode step's GEMM against weights re-laid out once per generation: C = A·Wᵀ for a
// few rows of A. W [N, K] (Hugging Face's [out, in]) is copied into panels of 32 output
// columns, each panel K rows of 32 floats. The kernel streams a panel with unit stride and,
// per k, multiplies one broadcast A[m][k] into 32 weights: a tile of rows × 32 columns of
// accumulators, no horizontal sums. Against the skinny kernel on the unpacked W (which must
// sum each dot product across its vector lanes), 2.7× the GFLOP/s on 8 × 512 · 512 × 1376
// with W cold in memory, 1.5× with W in L2.
//
// Panels are the outer loop: a panel (K × 128 bytes, in L2) serves every row of A before the
// next is read, so W crosses the memory bus once per call however many rows there are (a
// decode step's rows of several groups share one read).
//
// The tile's height is what the registers hold: 8 rows (16 accumulators) in AVX-512's 32 zmm;
// 2 rows (8 accumulators, 4 weight vectors and 2 broadcasts) in AVX2's 16 ymm, where 8 rows'
// 32 accumulators would spill to the stack on every k (30 against 66–80 GFLOP/s a core on this
// project's EPYC). Every C[m][n] is the same chain of multiply-adds over k in either tile, so
// the results do not depend on the tile.

#include "grove_kernels.h"
#include "vector16.h"

enum { PANEL = 32, MAX_ROWS = 8 };

void grove_pack_panels(int N, int K, const float *W, int ldw, int p0, int p1, float *P) {
    for (int p = p0; p < p1; p++) {
        float *panel = P + (long)p * K * PANEL;
        int width = N - p * PANEL < PANEL ? N - p * PANEL : PANEL;
        for (int j = 0; j < width; j++) {
            const float *w = W + (long)(p * PANEL + j) * ldw;
            for (int k = 0; k < K; k++) panel[(long)k * PANEL + j] = w[k];
        }
        for (int j = width; j < PANEL; j++)  // the last panel's missing columns are zeros
            for (int k = 0; k < K; k++) panel[(long)k * PANEL + j] = 0;
    }
}

// C = A·Wᵀ with tiles of ROWS rows; inlined into each instruction set's build below.
static inline __attribute__((always_inline)) void sgemm_panels(const int ROWS, int M, int N, int K, const float *A, int lda,
                                                               const float *P, float *C, int ldc) {
    const int panels = (N + PANEL - 1) / PANEL;
    for (int p = 0; p < panels; p++) {
        const float *b = P + (long)p * K * PANEL;
        int width = N - p * PANEL < PANEL ? N - p * PANEL : PANEL;
        for (int m0 = 0; m0 < M; m0 += ROWS) {
            // A chunk of fewer than ROWS rows repeats its last row: the tile stays in registers,
            // and the repeated rows' results are not stored.
            const float *a[MAX_ROWS];
            int rows = M - m0 < ROWS ? M - m0 : ROWS;
            for (int i = 0; i < ROWS; i++) a[i] = A + (long)(m0 + (i < rows ? i : rows - 1)) * lda;
            v16 lo[MAX_ROWS] = {{0}}, hi[MAX_ROWS] = {{0}};
            for (int k = 0; k < K; k++) {
                v16 w0 = LOAD16(b + (long)k * PANEL), w1 = LOAD16(b + (long)k * PANEL + 16);
#pragma clang loop unroll(full)
                for (int i = 0; i < ROWS; i++) { float x = a[i][k]; lo[i] += x * w0; hi[i] += x * w1; }
            }
            for (int i = 0; i < rows; i++) {
                float t[PANEL];
                memcpy(t, &lo[i], sizeof lo[i]);
                memcpy(t + 16, &hi[i], sizeof hi[i]);
                memcpy(C + (long)(m0 + i) * ldc + p * PANEL, t, (size_t)width * sizeof(float));
            }
        }
    }
}

__attribute__((target("avx512f"))) static void sgemm_panels_avx512(int M, int N, int K, const float *A, int lda,
                                                                   const float *P, float *C, int ldc) {
    sgemm_panels(8, M, N, K, A, lda, P, C, ldc);
}

__attribute__((target("avx2,fma"))) static void sgemm_panels_avx2(int M, int N, int K, const float *A, int lda,
                                                                  const float *P, float *C, int ldc) {
    sgemm_panels(2, M, N, K, A, lda, P, C, ldc);
}

static void sgemm_panels_default(int M, int N, int K, const float *A, int lda, const float *P, float *C, int ldc) {
    sgemm_panels(2, M, N, K, A, lda, P, C, ldc);
}

typedef void SgemmPanels(int M, int N, int K, const float *A, int lda, const float *P, float *C, int ldc);

// The loader's choice, as target_clones makes it: resolved once when the library is loaded.
static SgemmPanels *resolve_sgemm_panels(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return sgemm_panels_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return sgemm_panels_avx2;
    return sgemm_panels_default;
}

void grove_sgemm_panels(int M, int N, int K, const float *A, int lda, const float *P, float *C, int ldc)
    __attribute__((ifunc("resolve_sgemm_panels")));
