import Foundation

// Softmax family over the last dimension, rows of length C (V for logits).

/// log Σ exp(x) of one row, stable.
@inline(__always)
func logSumExp(_ x: UnsafePointer<Float>, _ C: Int) -> Float {
    var m = -Float.infinity
    for c in 0..<C { m = max(m, x[c]) }
    var s: Float = 0
    for c in 0..<C { s += expf(x[c] - m) }
    return m + logf(s)
}

/// Writes f(x − logsumexp(x)) for every row of x into `out`: the shared forward of
/// softmax (f = exp) and log-softmax (f = identity).
@inline(__always)
func normalizeRows(_ x: Tensor, into out: Tensor, _ f: @escaping (Float) -> Float) {
    let C = x.shape.last!, N = x.count / C
    let xp = x.data, o = out.data
    Parallel.forEach(N, grain: 16) { rows in
        for r in rows {
            let lse = logSumExp(xp + r * C, C)
            for c in 0..<C { o[r * C + c] = f(xp[r * C + c] - lse) }
        }
    }
}

/// softmax(x) over the last dimension. Backward: dx = y ⊙ (dy − Σ dy·y).
public func softmax(_ x: Tensor) -> Tensor {
    let C = x.shape.last!, N = x.count / C
    let out = Tensor(zeros: x.shape)
    normalizeRows(x, into: out, expf)
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
    let out = Tensor(zeros: x.shape)
    normalizeRows(x, into: out) { $0 }
    let o = out.data
    out.record([x]) { out in
        let dy = out.grad, dx = x.grad
        Parallel.forEach(N, grain: 16) { rows in
            for r in rows {
                let y = o + r * C, g = dy + r * C
                var total: Float = 0
                for c in 0..<C { total += g[c] }
                for c in 0..<C { dx[r * C + c] += g[c] - expf(y[c]) * total }
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
            l[n] = logSumExp(x + n * V, V)
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
                for c in 0..<V { drow[c] -= g * expf(row[c] - ln) }
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
