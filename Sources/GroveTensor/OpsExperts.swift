import CGroveKernels
import Foundation

// DeepSeekMoE's two ops (Dai et al. 2024; DeepSeek-V2 §2.2): the weights of each token's chosen
// experts, and the routed experts themselves as GEMMs over the tokens routed to each.
// Which experts a token goes to is not differentiable and is decided by the caller (GroveModel's
// router); these ops take that choice as `experts`: N·K indices, row-major, K per token.
// Shape legend: N tokens, E experts, K experts per token, C channels, I an expert's width.

/// How router logits become expert scores.
public enum ExpertScoring {
    /// s = softmax(logits) over the experts (DeepSeek-V2).
    case softmax
    /// s = σ(logits), each expert on its own (DeepSeek-V3).
    case sigmoid
}

/// The weights of each token's chosen experts → [N, K]:
///
///   w[n, k] = λ · s[n, e_nk] / Z_n,   Z_n = Σ_k s[n, e_nk] + 1e-20 when `normalize`, else 1,
///
/// with s the scores of `logits` [N, E], e = `experts` and λ = `scale` (routed_scaling_factor).
/// Backward, with g_k = λ·dw_k: ds[e_nk] = (g_k − Σ_j g_j·w_j/λ) / Z_n (normalised) or g_k, zero
/// for the experts not chosen; then dlogits = s ⊙ (ds − Σ ds ⊙ s) (softmax) or ds ⊙ s(1 − s) (sigmoid).
public func expertWeights(_ logits: Tensor, experts: [Int32], k K: Int, scoring: ExpertScoring, normalize: Bool, scale: Float) -> Tensor {
    let E = logits.shape.last!, N = logits.count / E
    precondition(experts.count == N * K && experts.allSatisfy { $0 >= 0 && Int($0) < E }, "expertWeights: \(experts.count) choices for \(N) tokens × \(K) of \(E) experts")
    let scores = Storage(count: N * E, zeroed: false), norms = Storage(count: N, zeroed: false)  // (N, E), (N) saved for backward
    let out = Tensor(uninitialized: [N, K])
    let x = logits.data, s = scores.base, z = norms.base, w = out.data
    for n in 0..<N {
        let row = x + n * E, sr = s + n * E
        switch scoring {
        case .softmax:
            var top = -Float.infinity
            for e in 0..<E { top = max(top, row[e]) }
            var total: Float = 0
            for e in 0..<E { sr[e] = expf(row[e] - top); total += sr[e] }
            for e in 0..<E { sr[e] /= total }
        case .sigmoid:
            for e in 0..<E { sr[e] = 1 / (1 + expf(-row[e])) }
        }
        var chosen: Float = 0
        for k in 0..<K { chosen += sr[Int(experts[n * K + k])] }
        z[n] = normalize ? chosen + 1e-20 : 1
        for k in 0..<K { w[n * K + k] = sr[Int(experts[n * K + k])] / z[n] * scale }
    }
    out.record([logits]) { out in
        let dw = out.grad, dx = logits.grad, s = scores.base, z = norms.base, w = out.data
        let ds = UnsafeMutablePointer<Float>.allocate(capacity: E)  // one row's d scores
        defer { ds.deallocate() }
        for n in 0..<N {
            ds.update(repeating: 0, count: E)
            var dot: Float = 0  // Σ_j g_j·w_j/λ, the normalisation's share
            if normalize { for k in 0..<K { dot += dw[n * K + k] * w[n * K + k] } }
            for k in 0..<K { ds[Int(experts[n * K + k])] += (dw[n * K + k] * scale - dot) / z[n] }
            let sr = s + n * E, dr = dx + n * E
            switch scoring {
            case .softmax:
                var inner: Float = 0
                for e in 0..<E { inner += ds[e] * sr[e] }
                for e in 0..<E { dr[e] += sr[e] * (ds[e] - inner) }
            case .sigmoid:
                for e in 0..<E { dr[e] += ds[e] * sr[e] * (1 - sr[e]) }
            }
        }
    }
    return out
}

/// The routed experts of a DeepSeekMoE layer → [N, C]:
///
///   y[n] = Σ_k w[n, k] · E_{e_nk}(x[n]),   E_e(x) = W^down_e · (silu(W^gate_e·x) ⊙ W^up_e·x)
///
/// x [N, C], `experts` N·K indices, weights [N, K], `gate` and `up` E × [I, C], `down` E × [C, I]
/// (Hugging Face's per-expert `gate_proj`, `up_proj`, `down_proj`). The rows routed to expert e
/// are gathered into one block X_e and each expert runs three GEMMs on it: no per-token loop.
/// Backward, over expert e's rows r (token n, slot k), with G, U, H = swiglu(G, U), Y saved:
///   dY_r = w_nk·dy_n,  dw_nk = dy_n·Y_r,  dW^down_e += dYᵀ·H,  dH = dY·W^down_e,  (dG, dU) from swiglu,
///   dW^gate_e += dGᵀ·X_e,  dW^up_e += dUᵀ·X_e,  dx_n += (dG·W^gate_e + dU·W^up_e)_r
public func mixtureOfExperts(_ x: Tensor, experts: [Int32], weights: Tensor, gate: [Tensor], up: [Tensor], down: [Tensor]) -> Tensor {
    let N = x.shape[0], C = x.shape[1], K = weights.shape.last!, E = gate.count, I = gate.first?.shape[0] ?? 0
    precondition(x.shape.count == 2 && weights.count == N * K && experts.count == N * K && up.count == E && down.count == E,
                 "mixtureOfExperts: x \(x.shape), weights \(weights.shape), \(experts.count) choices, \(E) experts")
    precondition(gate.allSatisfy { $0.shape == [I, C] } && up.allSatisfy { $0.shape == [I, C] } && down.allSatisfy { $0.shape == [C, I] },
                 "mixtureOfExperts: expert shapes for C \(C), I \(I)")
    // Routed rows grouped by expert (a counting sort, tokens in order within each): row r is slot[r] = n·K + k.
    var start = [Int](repeating: 0, count: E + 1)
    for e in experts { precondition(e >= 0 && Int(e) < E, "mixtureOfExperts: expert \(e) outside 0..<\(E)"); start[Int(e) + 1] += 1 }
    for e in 0..<E { start[e + 1] += start[e] }
    var slot = [Int](repeating: 0, count: N * K), next = start
    for (j, e) in experts.enumerated() { slot[next[Int(e)]] = j; next[Int(e)] += 1 }
    let R = N * K
    // Saved for backward: the gathered rows and each expert's activations.
    let X = Storage(count: R * C, zeroed: false), G = Storage(count: R * I, zeroed: false)  // (R, C), (R, I)
    let U = Storage(count: R * I, zeroed: false), H = Storage(count: R * I, zeroed: false)  // (R, I), (R, I)
    let Y = Storage(count: R * C, zeroed: false)                                            // (R, C)
    let xp = x.data, blas = BLAS.shared
    for r in 0..<R { (X.base + r * C).update(from: xp + (slot[r] / K) * C, count: C) }
    for e in 0..<E where start[e + 1] > start[e] {
        let o = start[e], rows = start[e + 1] - o
        blas.sgemm(.none, .transpose, m: rows, n: I, k: C, a: X.base + o * C, lda: C, b: gate[e].data, ldb: C, beta: 0, c: G.base + o * I, ldc: I)
        blas.sgemm(.none, .transpose, m: rows, n: I, k: C, a: X.base + o * C, lda: C, b: up[e].data, ldb: C, beta: 0, c: U.base + o * I, ldc: I)
        grove_swiglu(G.base + o * I, U.base + o * I, H.base + o * I, Int32(rows * I))
        blas.sgemm(.none, .transpose, m: rows, n: C, k: I, a: H.base + o * I, lda: I, b: down[e].data, ldb: I, beta: 0, c: Y.base + o * C, ldc: C)
    }
    let out = Tensor(zeros: [N, C])
    let y = out.data, w = weights.data
    for r in 0..<R {
        let dst = y + (slot[r] / K) * C, src = Y.base + r * C, weight = w[slot[r]]
        for c in 0..<C { dst[c] += weight * src[c] }
    }
    out.record([x, weights] + gate + up + down) { out in
        let dy = out.grad, w = weights.data
        if weights.requiresGrad {
            let dw = weights.grad
            for r in 0..<R {
                let g = dy + (slot[r] / K) * C, yr = Y.base + r * C
                var dot: Float = 0
                for c in 0..<C { dot += g[c] * yr[c] }
                dw[slot[r]] += dot
            }
        }
        // dY, then (once W^down's gradient and dH are taken) dX of the same rows in the same buffer.
        let D = Storage(count: R * C, zeroed: false), dH = Storage(count: R * I, zeroed: false)  // (R, C), (R, I)
        let dG = Storage(count: R * I), dU = Storage(count: R * I)  // (R, I): swiglu's backward accumulates
        for r in 0..<R {
            let g = dy + (slot[r] / K) * C, d = D.base + r * C, weight = w[slot[r]]
            for c in 0..<C { d[c] = weight * g[c] }
        }
        for e in 0..<E where start[e + 1] > start[e] {
            let o = start[e], rows = start[e + 1] - o
            let dYe = D.base + o * C, Xe = X.base + o * C
            if down[e].requiresGrad {
                blas.sgemm(.transpose, .none, m: C, n: I, k: rows, a: dYe, lda: C, b: H.base + o * I, ldb: I, beta: 1, c: down[e].grad, ldc: I)
            }
            blas.sgemm(.none, .none, m: rows, n: I, k: C, a: dYe, lda: C, b: down[e].data, ldb: I, beta: 0, c: dH.base + o * I, ldc: I)
            grove_swiglu_backward(G.base + o * I, U.base + o * I, dH.base + o * I, dG.base + o * I, dU.base + o * I, Int32(rows * I))
            for (weight, d) in [(gate[e], dG.base + o * I), (up[e], dU.base + o * I)] where weight.requiresGrad {
                blas.sgemm(.transpose, .none, m: I, n: C, k: rows, a: d, lda: I, b: Xe, ldb: C, beta: 1, c: weight.grad, ldc: C)
            }
            if x.requiresGrad {  // dX_e = dG·W^gate + dU·W^up, over dY_e (no longer needed)
                blas.sgemm(.none, .none, m: rows, n: C, k: I, a: dG.base + o * I, lda: I, b: gate[e].data, ldb: C, beta: 0, c: dYe, ldc: C)
                blas.sgemm(.none, .none, m: rows, n: C, k: I, a: dU.base + o * I, lda: I, b: up[e].data, ldb: C, beta: 1, c: dYe, ldc: C)
            }
        }
        if x.requiresGrad {
            let dx = x.grad
            for r in 0..<R {
                let dst = dx + (slot[r] / K) * C, src = D.base + r * C
                for c in 0..<C { dst[c] += src[c] }
            }
        }
    }
    return out
}

/// DeepSeek-V2's expert-level balance loss of one MoE layer (§2.2.3), a scalar:
///
///   L = Σ_i f_i·P_i,   f_i = E / (K·N) · #{tokens that chose i},   P_i = (1/N) Σ_n s'[n, i]
///
/// with s' the scores of `logits` [N, E]: softmax, or sigmoid normalised over each token's experts
/// (V3's sequence-wise form). f is a count and carries no gradient; with g_i = f_i / N,
/// softmax: dlogits = s ⊙ (g − Σ g·s); sigmoid: dσ_j = (g_j − Σ_i g_i·s'_i) / Σσ, dlogits = dσ ⊙ σ(1 − σ).
public func expertBalanceLoss(_ logits: Tensor, experts: [Int32], k K: Int, scoring: ExpertScoring) -> Tensor {
    let E = logits.shape.last!, N = logits.count / E
    precondition(experts.count == N * K, "expertBalanceLoss: \(experts.count) choices for \(N) tokens × \(K)")
    var f = [Float](repeating: 0, count: E)
    for e in experts { f[Int(e)] += Float(E) / Float(K * N) }
    let scores = Storage(count: N * E, zeroed: false), sums = Storage(count: N, zeroed: false)  // (N, E) s', (N) Σσ
    let x = logits.data, s = scores.base
    var loss: Double = 0
    for n in 0..<N {
        let row = x + n * E, sr = s + n * E
        var total: Float = 0
        switch scoring {
        case .softmax:
            var top = -Float.infinity
            for e in 0..<E { top = max(top, row[e]) }
            for e in 0..<E { sr[e] = expf(row[e] - top); total += sr[e] }
        case .sigmoid:
            for e in 0..<E { sr[e] = 1 / (1 + expf(-row[e])); total += sr[e] }
        }
        for e in 0..<E { sr[e] /= total; loss += Double(f[e] * sr[e]) / Double(N) }
        sums.base[n] = total
    }
    let out = Tensor([Float(loss)], shape: [1])
    out.record([logits]) { out in
        let dy = out.grad[0], dx = logits.grad, s = scores.base
        for n in 0..<N {
            let sr = s + n * E, dr = dx + n * E
            var dot: Float = 0
            for e in 0..<E { dot += f[e] / Float(N) * sr[e] }
            for e in 0..<E {
                let g = dy * (f[e] / Float(N) - dot)
                switch scoring {
                case .softmax: dr[e] += sr[e] * g
                case .sigmoid:  // σ = s'·Σσ
                    let sigma = sr[e] * sums.base[n]
                    dr[e] += g / sums.base[n] * sigma * (1 - sigma)
                }
            }
        }
    }
    return out
}
