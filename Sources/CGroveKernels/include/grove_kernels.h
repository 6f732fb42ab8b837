#ifndef GROVE_KERNELS_H
#define GROVE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/// C[m][n] = alpha * sum_k A[m][k] * B[n][k] + beta * C[m][n], for m < M and n0 <= n < n1:
/// a GEMM with few rows (a decode step: one row per sequence) against a weight matrix
/// stored as [out, in]. Unlike BLAS it never copies B into a packed buffer: each group of
/// four B rows is read once from memory and used for every row of A while it sits in L1.
void grove_sgemm_skinny_nt(int M, int n0, int n1, int K, float alpha,
                           const float *A, int lda, const float *B, int ldb,
                           float beta, float *C, int ldc);

/// Copies panels p0..<p1 of W [N, K] (row stride ldw) into P: panel p is K rows of 32 floats,
/// W's rows 32p..<32p+32 transposed, zeros past row N. P holds ceil(N / 32) · K · 32 floats.
void grove_pack_panels(int N, int K, const float *W, int ldw, int p0, int p1, float *P);

/// C[m][n] = sum_k A[m][k] * W[n][k] for m < M, n < N, W packed by grove_pack_panels
/// (panel_gemm.c: the decode step's GEMM; any M, fastest for M <= 8).
void grove_sgemm_panels(int M, int N, int K, const float *A, int lda, const float *P, float *C, int ldc);

/// The instruction set the skinny kernel runs with on this CPU: "avx512f", "avx2" or "sse2".
const char *grove_skinny_isa(void);

/// out[i] = exp(x[i] − shift) (vector_exp.c: vectorised, within 2 ulp of expf; `out` may be `x`).
void grove_exp(const float *x, float shift, float *out, int n);

/// out[i] = exp(x[i] − shift), returning Σ out[i] (summed in a fixed order).
float grove_exp_sum(const float *x, float shift, float *out, int n);

/// log Σ exp(x[i]), shifted by the maximum for stability; −inf for an all −inf row.
float grove_log_sum_exp(const float *x, int n);

/// d[i] −= g · exp(x[i] − shift): the softmax term of a log-softmax gradient.
void grove_sub_scaled_exp(float *d, const float *x, float shift, float g, int n);

/// out[i] = silu(gate[i]) · up[i], silu(x) = x·σ(x).
void grove_swiglu(const float *gate, const float *up, float *out, int n);

/// SwiGLU's backward: dup += dy·silu(gate), dgate += dy·up·σ(gate)·(1 + gate·(1 − σ(gate)));
/// either output may be NULL.
void grove_swiglu_backward(const float *gate, const float *up, const float *dy, float *dgate, float *dup, int n);

/// In-place softmax of one attention row over the keys it may see: key s with s < limit and,
/// when `mask` is not NULL, mask[s]; the others become 0, and a row that sees no key is all zeros.
void grove_masked_softmax_row(float *row, int n, int limit, const _Bool *mask);

/// Softmax's backward for one row of probabilities p: d ← p ⊙ (d − Σ p·d).
void grove_softmax_backward_row(const float *p, float *d, int n);

/// One RMSNorm row: y = x · rstd · w, rstd = 1/√(mean(x²) + eps); returns rstd.
float grove_rms_norm_row(const float *x, const float *w, float *y, int C, float eps);

/// RMSNorm's backward for one row: dx += rstd · (dy·w − x·rstd · mean(dy·w·x·rstd));
/// `scratch` holds C floats.
void grove_rms_norm_backward_row(const float *x, const float *w, const float *dy, float rstd, float *dx,
                                 float *scratch, int C);

/// dw += dy · x · rstd (one row's share of RMSNorm's weight gradient).
void grove_rms_norm_weight_grad_row(const float *x, const float *dy, float rstd, float *dw, int C);

/// AdamW's update of n parameters w from their gradients g and moments m, v (PyTorch's
/// torch.optim.AdamW): m ← β1·m + (1 − β1)·g, v ← β2·v + (1 − β2)·g²,
/// w ← w·decay − lr·(m / c1) / (√(v / c2) + ε), with c1, c2 the bias corrections 1 − βᵗ and
/// decay = 1 − lr·λ (1 for parameters without weight decay).
void grove_adamw(float *w, const float *g, float *m, float *v, long n,
                 float beta1, float beta2, float lr, float c1, float c2, float eps, float decay);

/// grove_adamw with the moments m, v stored as bfloat16 bits: read exactly, updated in float32
/// (the weights stepped with those float32 moments), written back with stochastic rounding whose
/// random bits hash key + first + i, element i of a chunk starting at element `first` of its
/// parameter: the same bits however the parameter is split over threads.
void grove_adamw_bf16(float *w, const float *g, uint16_t *m, uint16_t *v, long n, long first, uint32_t key,
                      float beta1, float beta2, float lr, float c1, float c2, float eps, float decay);

/// Σ x[i]² (float partial sums, added up in double).
double grove_sum_squares(const float *x, long n);

/// A 64-byte-aligned block of `bytes` for a tensor's storage; never NULL (aborts when out of
/// memory). Blocks come from a range of their own, best fit, and freed blocks keep their pages
/// for the next step's tensors: see heap.c.
void *grove_alloc(size_t bytes);

/// Returns a block from `grove_alloc` of the same `bytes`.
void grove_free(void *block, size_t bytes);

/// The cores this process may run on (its CPU affinity), at least 1.
int grove_usable_cpus(void);

#endif
