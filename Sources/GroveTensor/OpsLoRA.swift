// LoRA's two ops: the adapted linear layer in one pass, and the dropout on its low-rank input.

/// A linear layer with a low-rank update (Hu et al. 2021; PEFT's `lora.Linear`), in one op:
///
///   y = x·Wᵀ + b + s · (d·Aᵀ)·Bᵀ
///
/// x [..., in], W [out, in], b [out], A [r, in], B [out, r], s the scale (alpha/r, or alpha/√r
/// with rsLoRA), d the low-rank path's input: `lowRankInput`, or x itself (no dropout).
/// The base W is usually frozen: its gradient is computed only when it requires one.
/// Backward, with u = d·Aᵀ [N, r] kept from the forward, g = dy and gB = s·g·B [N, r]:
///   dx += g·W    dW += gᵀ·x    db += Σₙ g    dB += s·gᵀ·u    dA += gBᵀ·d    dd += gB·A
public func loraLinear(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, a: Tensor, b: Tensor, scale s: Float,
                       lowRankInput: Tensor? = nil) -> Tensor {
    let K = weight.shape[1], M = weight.shape[0], R = a.shape[0]
    precondition(x.shape.last == K && a.shape == [R, K] && b.shape == [M, R],
                 "loraLinear: input \(x.shape), weight \(weight.shape), A \(a.shape), B \(b.shape)")
    precondition(lowRankInput.map { $0.shape == x.shape } ?? true, "loraLinear: low-rank input \(lowRankInput!.shape) for \(x.shape)")
    let N = x.count / K
    let x2 = x.reshaped([N, K]), d2 = lowRankInput?.reshaped([N, K]) ?? x2
    let out = Tensor(uninitialized: [N, M]), u = Tensor(uninitialized: [N, R])
    let blas = BLAS.shared
    blas.sgemm(.none, .transpose, m: N, n: M, k: K, a: x2.data, lda: K, b: weight.data, ldb: K, beta: 0, c: out.data, ldc: M)
    if let bias {
        let y = out.data, bp = bias.data
        for n in 0..<N { for m in 0..<M { y[n * M + m] += bp[m] } }
    }
    blas.sgemm(.none, .transpose, m: N, n: R, k: K, a: d2.data, lda: K, b: a.data, ldb: K, beta: 0, c: u.data, ldc: R)       // u = d·Aᵀ
    blas.sgemm(.none, .transpose, m: N, n: M, k: R, alpha: s, a: u.data, lda: R, b: b.data, ldb: R, beta: 1, c: out.data, ldc: M)  // y += s·u·Bᵀ
    out.record([x2, weight, a, b] + (bias.map { [$0] } ?? []) + (d2 === x2 ? [] : [d2])) { out in
        let g = out.grad
        if x2.requiresGrad {
            blas.sgemm(.none, .none, m: N, n: K, k: M, a: g, lda: M, b: weight.data, ldb: K, beta: 1, c: x2.grad, ldc: K)
        }
        if weight.requiresGrad {
            blas.sgemm(.transpose, .none, m: M, n: K, k: N, a: g, lda: M, b: x2.data, ldb: K, beta: 1, c: weight.grad, ldc: K)
        }
        if let bias, bias.requiresGrad {
            let db = bias.grad
            for n in 0..<N { for m in 0..<M { db[m] += g[n * M + m] } }
        }
        if b.requiresGrad {
            blas.sgemm(.transpose, .none, m: M, n: R, k: N, alpha: s, a: g, lda: M, b: u.data, ldb: R, beta: 1, c: b.grad, ldc: R)
        }
        guard a.requiresGrad || d2.requiresGrad else { return }
        let gB = Tensor(uninitialized: [N, R])
        blas.sgemm(.none, .none, m: N, n: R, k: M, alpha: s, a: g, lda: M, b: b.data, ldb: R, beta: 0, c: gB.data, ldc: R)
        if a.requiresGrad {
            blas.sgemm(.transpose, .none, m: R, n: K, k: N, a: gB.data, lda: R, b: d2.data, ldb: K, beta: 1, c: a.grad, ldc: K)
        }
        if d2.requiresGrad {
            blas.sgemm(.none, .none, m: N, n: K, k: R, a: gB.data, lda: R, b: a.data, ldb: K, beta: 1, c: d2.grad, ldc: K)
        }
    }
    return out.reshaped(Array(x.shape.dropLast()) + [M])
}

/// Inverted dropout: each element is kept with probability 1 − p and scaled by 1/(1 − p), so
/// E[y] = x; y = x ⊙ m, dx += g ⊙ m, with the mask m ∈ {0, 1/(1 − p)} drawn from `rng`.
public func dropout(_ x: Tensor, p: Float, rng: inout SeededRandom) -> Tensor {
    precondition(p >= 0 && p < 1, "dropout: p \(p) outside [0, 1)")
    let keep = 1 / (1 - p), n = x.count
    let mask = Tensor(uninitialized: x.shape)
    let m = mask.data
    for i in 0..<n { m[i] = rng.uniform() < p ? 0 : keep }
    let out = Tensor(uninitialized: x.shape)
    let y = out.data, xp = x.data
    for i in 0..<n { y[i] = xp[i] * m[i] }
    out.record([x]) { out in
        let g = out.grad, dx = x.grad, m = mask.data  // the closure keeps the mask alive
        for i in 0..<n { dx[i] += g[i] * m[i] }
    }
    return out
}
