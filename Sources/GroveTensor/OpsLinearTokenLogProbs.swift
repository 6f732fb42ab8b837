import CGroveKernels
import Foundation

// The LM head and the sampled tokens' log-probabilities in one op, chunked over rows.
//
// GRPO needs log p(target) at every completion position, not the logits. Computed as
// tokenLogProbs(scale(linear(h, W), s)), a batch of N rows holds N×V logits, their scaled copy
// and both gradients at once: for SmolLM2's vocabulary (V 49,152) and 1,024 completion tokens,
// 4 × 201 MB. Here the rows go through in chunks of R rows (R·V ≤ `chunkFloats`): the forward
// keeps only each row's log-sum-exp; the backward computes each chunk's logits again (one more
// GEMM of the head) and sends the chunk's gradient straight into dh and dW.
//
//   x = s · h·Wᵀ                     (R, V) per chunk
//   logp_n = x[n, t_n] − lse_n        lse_n = log Σ_v exp x[n, v]
//   dx[n] = dy_n · (onehot(t_n) − softmax(x[n])),  dh += s·dx·W,  dW += (s·dx)ᵀ·h
//
// When every row fits in one chunk its logits are kept for the backward instead, and the
// arithmetic is exactly that of tokenLogProbs(scale(linear(h, W), s)): the same GEMM calls,
// the same per-row loops. With several chunks dW sums over chunks (the summation order of
// one GEMM over all rows changes).

/// Logits (floats) a chunk of `linearTokenLogProbs` may hold: 32 MiB, and as many again for its gradient.
public let linearTokenLogProbsChunkFloats = 1 << 23

/// log p(target) of each row under softmax(s · h·Wᵀ): `hidden` [N, C], `weight` [V, C] (the LM
/// head), `targets` (N), negative for padding (log-prob 0, no gradient). Differentiable in
/// `hidden` and `weight`; never holds more than `chunkFloats` logits (see above).
///
/// `entropyRows` (N), when given, asks for the entropy of each selected row's distribution:
/// with e_v = exp(x_v − m), Z = Σ e_v, H = log Z − Σ e_v (x_v − m) / Z (0 for other rows).
public func linearTokenLogProbs(_ hidden: Tensor, _ weight: Tensor, scale s: Float = 1, targets: [Int32],
                                entropyRows: [Bool]? = nil,
                                chunkFloats: Int = linearTokenLogProbsChunkFloats) -> (logp: Tensor, entropy: [Float]) {
    let V = weight.shape[0], C = weight.shape[1], N = hidden.count / C
    precondition(weight.shape.count == 2 && hidden.shape.last == C, "linearTokenLogProbs: hidden \(hidden.shape), weight \(weight.shape)")
    precondition(targets.count == N && (entropyRows?.count ?? N) == N, "linearTokenLogProbs: \(targets.count) targets for \(N) rows")
    precondition(targets.allSatisfy { $0 < V }, "linearTokenLogProbs: a target outside the vocabulary of \(V)")
    let R = max(1, min(N, chunkFloats / max(V, 1)))
    let chunks = stride(from: 0, to: N, by: R).map { $0..<min($0 + R, N) }
    let logits = Storage(count: R * V, zeroed: false)  // (R, V) one chunk's logits
    let out = Tensor(zeros: [N])
    let lse = Storage(count: N)  // (N) saved for backward
    var entropy = [Float](repeating: 0, count: entropyRows == nil ? 0 : N)
    let h = hidden.data, w = weight.data, x = logits.base, o = out.data, l = lse.base

    /// x = s · h[rows]·Wᵀ into `logits`.
    func chunkLogits(_ rows: Range<Int>) {
        BLAS.shared.sgemm(.none, .transpose, m: rows.count, n: V, k: C, a: h + rows.lowerBound * C, lda: C, b: w, ldb: C,
                          beta: 0, c: x, ldc: V)
        guard s != 1 else { return }  // x · 1 = x
        Parallel.forEach(rows.count, grain: 8) { local in
            for r in local { for v in 0..<V { x[r * V + v] *= s } }
        }
    }

    for rows in chunks {
        chunkLogits(rows)
        entropy.withUnsafeMutableBufferPointer { ent in
            Parallel.forEach(rows.count, grain: 8) { local in
                for r in local {
                    let n = rows.lowerBound + r, t = Int(targets[n]), row = x + r * V
                    if t >= 0 {
                        l[n] = grove_log_sum_exp(row, Int32(V))
                        o[n] = row[t] - l[n]
                    }
                    if entropyRows?[n] == true {
                        var m = -Float.infinity
                        for v in 0..<V { m = max(m, row[v]) }
                        var z: Float = 0, weighted: Float = 0
                        for v in 0..<V {
                            let d = row[v] - m, e = expf(d)
                            z += e; weighted += e * d
                        }
                        ent[n] = logf(z) - weighted / z
                    }
                }
            }
        }
    }

    let single = chunks.count == 1
    out.record([hidden, weight]) { out in
        let dy = out.grad, l = lse.base, x = logits.base  // read the storages here so the closure keeps them
        let gradient = Storage(count: R * V, zeroed: false), dx = gradient.base  // (R, V)
        for rows in chunks {
            if !single { chunkLogits(rows) }
            Parallel.forEach(rows.count, grain: 8) { local in
                for r in local {
                    let n = rows.lowerBound + r, t = Int(targets[n]), drow = dx + r * V
                    drow.initialize(repeating: 0, count: V)
                    guard t >= 0, dy[n] != 0 else { continue }
                    grove_sub_scaled_exp(drow, x + r * V, l[n], dy[n], Int32(V))
                    drow[t] += dy[n]
                    if s != 1 { for v in 0..<V { drow[v] *= s } }
                }
            }
            let blas = BLAS.shared, m = rows.count
            if hidden.requiresGrad {  // dh[rows] += dx·W
                blas.sgemm(.none, .none, m: m, n: C, k: V, a: dx, lda: V, b: w, ldb: C, beta: 1,
                           c: hidden.grad + rows.lowerBound * C, ldc: C)
            }
            if weight.requiresGrad {  // dW += dxᵀ·h[rows]
                blas.sgemm(.transpose, .none, m: V, n: C, k: m, a: dx, lda: V, b: h + rows.lowerBound * C, ldb: C, beta: 1,
                           c: weight.grad, ldc: C)
            }
        }
    }
    return (out, entropy)
}
