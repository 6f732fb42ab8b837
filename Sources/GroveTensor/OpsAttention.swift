import CGroveKernels
import Foundation

/// Causal scaled-dot-product attention with grouped KV heads and a key padding mask.
///
/// q [B, T, NH, HS]; k [B, S, KVH, HS], v [B, S, KVH, HSV] with S ≥ T (HSV = HS but for MLA,
/// whose values are narrower than its query/key heads); the output is [B, T, NH, HSV]. The T queries are the last T of the
/// S positions (S > T when earlier keys come from a KV cache). Query t sees key s when
/// s ≤ t + (S − T) and `keyMask[b·capacity + s]` is true (nil: every key is real). Query head h
/// reads KV head h / (NH / KVH). A query that sees no key outputs zeros. `keyLength`
/// uses only the first S of k's rows per batch (a KV cache allocated for more). With `valueSize`, v is
/// k itself and a head's values are the first `valueSize` of its key's elements (MLA decoding from its
/// latent cache: keys [c_KV | k_R], values c_KV, one copy of each row).
///
///   P = softmax(Q·Kᵀ / √HS + mask),  O = P·V
/// Backward, per (b, h):
///   dP = dO·Vᵀ,  dV += Pᵀ·dO,  dS = P ⊙ (dP − rowsum(dP ⊙ P)),  dQ += dS·K/√HS,  dK += dSᵀ·Q/√HS
///
/// Causality is used, not only masked: queries go in blocks of `rowBlock` rows, and a block's
/// GEMMs stop at the last key its last row may see, so a full sequence costs about half
/// of the T·S products (5/8 with blocks of T/4). `rowBlock` changes speed, never results
/// beyond float rounding.
public func attention(_ q: Tensor, _ k: Tensor, _ v: Tensor, keyMask: [Bool]? = nil, keyLength: Int? = nil,
                      valueSize: Int? = nil, rowBlock: Int = 64) -> Tensor {
    precondition(q.shape.count == 4 && k.shape.count == 4 && v.shape.count == 4 && Array(v.shape.prefix(3)) == Array(k.shape.prefix(3)),
                 "attention: q \(q.shape), k \(k.shape), v \(v.shape)")
    precondition(valueSize == nil || (v === k && valueSize! <= k.shape[3]), "attention: valueSize needs v to be k")
    let B = q.shape[0], T = q.shape[1], NH = q.shape[2], HS = q.shape[3]
    let S = keyLength ?? k.shape[1], capacity = k.shape[1], KVH = k.shape[2], HSV = valueSize ?? v.shape[3]
    precondition(k.shape[0] == B && k.shape[3] == HS && S >= T && S <= capacity && NH % KVH == 0, "attention: q \(q.shape) vs k \(k.shape)")
    precondition(keyMask == nil || keyMask!.count == B * capacity, "attention: key mask needs one entry per key row")
    let groups = NH / KVH, offset = S - T
    let scale = 1 / Float(HS).squareRoot()
    // A value head starts every HSV elements of a row, or every HS with `valueSize` (inside the key's head).
    let vHead = valueSize == nil ? HSV : HS
    let qStride = NH * HS, kvStride = KVH * HS, vStride = KVH * vHead, oStride = NH * HSV
    let out = Tensor(uninitialized: [B, T, NH, HSV])  // every (b, t, h) row is a P·V product
    let probs = Storage(count: B * NH * T * S, zeroed: false)  // (B, NH, T, S) saved for backward; read only up to each block's keys
    let blas = BLAS.shared

    // Query blocks (first row, rows, keys the block's GEMMs read): row t sees keys 0...t + offset.
    precondition(rowBlock > 0, "attention: rowBlock must be positive")
    let blocks = stride(from: 0, to: T, by: rowBlock).map { t0 in
        (t0, min(rowBlock, T - t0), min(S, t0 + min(rowBlock, T - t0) + offset))
    }

    // One task per (batch row, KV head): its query heads' GEMMs run single-threaded side by
    // side, and in the backward pass each task owns its KV head's dK, dV rows (no races).
    // Query row t sees keys s ≤ t + offset whose entry b·capacity + s in `mask` is true.
    func forward(mask: UnsafePointer<Bool>?) {
        Parallel.forEach(B * KVH) { tasks in
            for task in tasks {
                let b = task / KVH, g = task % KVH
                for h in g * groups..<(g + 1) * groups {
                    let K = k.data + b * capacity * kvStride + g * HS
                    let V = v.data + b * capacity * vStride + g * vHead
                    for (t0, rows, keys) in blocks {
                        let Q = q.data + (b * T + t0) * qStride + h * HS
                        let P = probs.base + ((b * NH + h) * T + t0) * S
                        blas.sgemm(.none, .transpose, m: rows, n: keys, k: HS, alpha: scale, a: Q, lda: qStride, b: K, ldb: kvStride,
                                   beta: 0, c: P, ldc: S, split: false)
                        for t in t0..<t0 + rows {
                            grove_masked_softmax_row(P + (t - t0) * S, Int32(keys), Int32(t + offset + 1), mask.map { $0 + b * capacity })
                        }
                        blas.sgemm(.none, .none, m: rows, n: HSV, k: keys, a: P, lda: S, b: V, ldb: vStride,
                                   beta: 0, c: out.data + (b * T + t0) * oStride + h * HSV, ldc: oStride, split: false)
                    }
                }
            }
        }
    }
    if let keyMask { keyMask.withUnsafeBufferPointer { forward(mask: $0.baseAddress) } } else { forward(mask: nil) }

    out.record([q, k, v]) { out in
        // Gradient buffers are allocated on first access: take them here, not inside the workers.
        let gradOut = out.grad
        let dQ = q.requiresGrad ? q.grad : nil, dK = k.requiresGrad ? k.grad : nil, dV = v.requiresGrad ? v.grad : nil
        Parallel.forEach(B * KVH) { tasks in
            let dS = UnsafeMutablePointer<Float>.allocate(capacity: min(rowBlock, T) * S)  // (rows, S) scratch of this worker
            defer { dS.deallocate() }
            for task in tasks {
                let b = task / KVH, g = task % KVH, kvOff = b * capacity * kvStride + g * HS, vOff = b * capacity * vStride + g * vHead
                for h in g * groups..<(g + 1) * groups {
                    for (t0, rows, keys) in blocks {
                        let qOff = (b * T + t0) * qStride + h * HS
                        let dO = gradOut + (b * T + t0) * oStride + h * HSV
                        let P = probs.base + ((b * NH + h) * T + t0) * S
                        blas.sgemm(.none, .transpose, m: rows, n: keys, k: HSV, a: dO, lda: oStride, b: v.data + vOff, ldb: vStride,
                                   beta: 0, c: dS, ldc: S, split: false)
                        if let dV {
                            blas.sgemm(.transpose, .none, m: keys, n: HSV, k: rows, a: P, lda: S, b: dO, ldb: oStride,
                                       beta: 1, c: dV + vOff, ldc: vStride, split: false)
                        }
                        for r in 0..<rows { grove_softmax_backward_row(P + r * S, dS + r * S, Int32(keys)) }
                        if let dQ {
                            blas.sgemm(.none, .none, m: rows, n: HS, k: keys, alpha: scale, a: dS, lda: S, b: k.data + kvOff, ldb: kvStride,
                                       beta: 1, c: dQ + qOff, ldc: qStride, split: false)
                        }
                        if let dK {
                            blas.sgemm(.transpose, .none, m: keys, n: HS, k: rows, alpha: scale, a: dS, lda: S, b: q.data + qOff, ldb: qStride,
                                       beta: 1, c: dK + kvOff, ldc: kvStride, split: false)
                        }
                    }
                }
            }
        }
    }
    return out
}
