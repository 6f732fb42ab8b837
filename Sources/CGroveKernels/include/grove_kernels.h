#ifndef GROVE_KERNELS_H
#define GROVE_KERNELS_H

/// C[m][n] = alpha * sum_k A[m][k] * B[n][k] + beta * C[m][n], for m < M and n0 <= n < n1:
/// a GEMM with few rows (a decode step: one row per sequence) against a weight matrix
/// stored as [out, in]. Unlike BLAS it never copies B into a packed buffer: each group of
/// four B rows is read once from memory and used for every row of A while it sits in L1.
void grove_sgemm_skinny_nt(int M, int n0, int n1, int K, float alpha,
                           const float *A, int lda, const float *B, int ldb,
                           float beta, float *C, int ldc);

/// The instruction set the skinny kernel runs with on this CPU: "avx512f", "avx2" or "sse2".
const char *grove_skinny_isa(void);

/// Keeps freed blocks of up to 32 MiB in the heap instead of returning them to the kernel
/// (glibc's mallopt; nothing elsewhere): see Storage in Tensor.swift.
void grove_keep_freed_memory(void);

#endif
