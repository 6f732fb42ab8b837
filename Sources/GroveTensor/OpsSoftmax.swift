import CGroveKernels
import Foundation

// Softmax family over the last dimension, rows of length C (V for logits).
// exp runs in the vectorised C kernels of vector_exp.c.

/// The shared forward of softmax (`exp: true`, y = exp(x − lse)) and log-softmax
/// (y = x − lse), lse = log Σ exp(x) of each row.
@inline(__always)
func normalizeRows(_ x: Tensor, into out: Tensor, exp: Bool) {
    let C = x.shape.last!, N = x.count / C
    let xp = x.data, o = out.data
    Parallel.forEach(N, grain: 16) { rows in
        for r in rows {
            let row = xp + r * C, lse = grove_log_sum_exp(row, Int32(C))
            if exp { grove_exp(row, lse, o + r * C, Int32(C)) } else { for c in 0..<C { o[r * C + c] = row[c] - lse } }
        }
    }
}

/// softmax(x) over the last dimension. Backward: dx = y ⊙ (dy − Σ dy·y).
public func softmax(_ x: Tensor) -> Tensor {
    let C = x.shape.last!, N = x.count / C
    let out = Tensor(uninitialized: x.shape)
    normalizeRows(x, into: out, exp: true)
    let o = out.data
    out.record([x]) { out in
        let dy = out.grad, dx = x.grad
        Parallel.forEach(N, grain: 16) { rows in
            for r in rows {
                let y = o + r * C, g = dy + r * C
                var dot: Float = 0
                for c in 0..<C { dot += g[c] * y[c] }
                for c in 0..<C { dx[r * C + c] += y[c] * (g[c] - dot) }
            }
        }
    }
    return out
}

/// log softmax(x) over the last dimension. Backward: dx = dy − softmax(x)·Σ dy.
public func logSoftmax(_ x: Tensor) -> Tensor {
    let C = x.shape.last!, N = x.count / C
    let out = Tensor(uninitialized: x.shape)
    normalizeRows(x, into: out, exp: false)
    let o = out.data
    out.record([x]) { out in
        let dy = out.grad, dx = x.grad
        Parallel.forEach(N, grain: 16) { rows in
            for r in rows {
                let y = o + r * C, g = dy + r * C
                var total: Float = 0
                for c in 0..<C { total += g[c]; dx[r * C + c] += g[c] }
                grove_sub_scaled_exp(dx + r * C, y, 0, total, Int32(C))
            }
        }
    }
    return out
}

/// log p(target) for each row: logits [N, V], targets (N) → [N], fused so the
/// probabilities are never materialised: logp_n = x[n, t_n] − logsumexp(x[n]).
/// Backward: dx[n] = dy_n · (onehot(t_n) − softmax(x[n])). Rows whose target is
/// negative (padding) give 0 and receive no gradient.
public func tokenLogProbs(_ logits: Tensor, targets: [Int32]) -> Tensor {
    let V = logits.shape.last!, N = logits.count / V
    precondition(targets.count == N, "tokenLogProbs: \(targets.count) targets for \(N) rows")
    let out = Tensor(zeros: [N])
    let lse = Storage(count: N)  // (N) saved for backward
    let x = logits.data, o = out.data, l = lse.base
    Parallel.forEach(N, grain: 8) { rows in
        for n in rows {
            let t = Int(targets[n])
            guard t >= 0 else { continue }
            precondition(t < V, "tokenLogProbs: target \(t) outside vocabulary of \(V)")
            l[n] = grove_log_sum_exp(x + n * V, Int32(V))
            o[n] = x[n * V + t] - l[n]
        }
    }
    out.record([logits]) { out in
        let dy = out.grad, dx = logits.grad, l = lse.base  // read `lse` here so the closure keeps it alive
        Parallel.forEach(N, grain: 8) { rows in
            for n in rows {
                let t = Int(targets[n])
                guard t >= 0, dy[n] != 0 else { continue }
                let row = x + n * V, drow = dx + n * V, g = dy[n], ln = l[n]
                grove_sub_scaled_exp(drow, row, ln, g, Int32(V))
                drow[t] += g
            }
        }
    }
    return out
}

/// Mean cross-entropy over rows whose target is not `ignoreIndex`:
/// loss = −(1/|valid|) Σ_valid log softmax(x[n])[t_n]. A batch with no valid row gives 0.
public func crossEntropy(_ logits: Tensor, targets: [Int32], ignoreIndex: Int32 = -100) -> Tensor {
    let masked = targets.map { $0 == ignoreIndex ? -1 : $0 }
    let valid = masked.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) }
    return scale(sum(tokenLogProbs(logits, targets: masked)), -1 / Float(max(valid, 1)))
}
