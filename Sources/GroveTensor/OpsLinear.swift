// Matrix products through cblas_sgemm. Transposed operands are passed to BLAS as
// flags, never copied. Backward follows from C = op(A)·op(B):
//   dA = dC·op(B)ᵀ   dB = op(A)ᵀ·dC   (then transposed back when A or B was stored transposed)

/// C = op(A)·op(B) for 2-D tensors; `transposeA`/`transposeB` read the stored matrix transposed.
/// A is stored [M, K] (or [K, M] when transposed), B [K, N] (or [N, K]).
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    precondition(a.shape.count == 2 && b.shape.count == 2, "matmul: 2-D operands, got \(a.shape) and \(b.shape)")
    let M = transposeA ? a.shape[1] : a.shape[0], K = transposeA ? a.shape[0] : a.shape[1]
    let N = transposeB ? b.shape[0] : b.shape[1]
    precondition((transposeB ? b.shape[1] : b.shape[0]) == K, "matmul: inner sizes differ, \(a.shape)·\(b.shape)")
    let out = Tensor(uninitialized: [M, N])  // written by the GEMM (beta 0)
    let lda = a.shape[1], ldb = b.shape[1]
    let tA: Transpose = transposeA ? .transpose : .none, tB: Transpose = transposeB ? .transpose : .none
    BLAS.shared.sgemm(tA, tB, m: M, n: N, k: K, a: a.data, lda: lda, b: b.data, ldb: ldb, beta: 0, c: out.data, ldc: N)
    out.record([a, b]) { out in
        let blas = BLAS.shared, dC = out.grad
        if a.requiresGrad {
            if !transposeA {  // dA[M,K] += dC[M,N]·op(B)ᵀ
                blas.sgemm(.none, transposeB ? .none : .transpose, m: M, n: K, k: N,
                           a: dC, lda: N, b: b.data, ldb: ldb, beta: 1, c: a.grad, ldc: K)
            } else {          // dA[K,M] += op(B)·dCᵀ
                blas.sgemm(transposeB ? .transpose : .none, .transpose, m: K, n: M, k: N,
                           a: b.data, lda: ldb, b: dC, ldb: N, beta: 1, c: a.grad, ldc: M)
            }
        }
        if b.requiresGrad {
            if !transposeB {  // dB[K,N] += op(A)ᵀ·dC
                blas.sgemm(transposeA ? .none : .transpose, .none, m: K, n: N, k: M,
                           a: a.data, lda: lda, b: dC, ldb: N, beta: 1, c: b.grad, ldc: N)
            } else {          // dB[N,K] += dCᵀ·op(A)
                blas.sgemm(.transpose, transposeA ? .transpose : .none, m: N, n: K, k: M,
                           a: dC, lda: N, b: a.data, ldb: lda, beta: 1, c: b.grad, ldc: K)
            }
        }
    }
    return out
}

/// y = x·Wᵀ + b, the layout of `nn.Linear`: x [..., in], weight [out, in], bias [out].
public func linear(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil) -> Tensor {
    let inFeatures = weight.shape[1]
    precondition(x.shape.last == inFeatures, "linear: input \(x.shape) for weight \(weight.shape)")
    let rows = x.count / inFeatures
    var y = matmul(x.reshaped([rows, inFeatures]), weight, transposeB: true)
    if let bias { y = addBias(y, bias) }
    return y.reshaped(Array(x.shape.dropLast()) + [weight.shape[0]])
}
