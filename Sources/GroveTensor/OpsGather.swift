/// Rows of `table` [N, C] picked by `rows` → [rows.count, C]: an embedding lookup, or a gather
/// of hidden rows. Backward scatters (adds) each output row's gradient into its source row,
/// so a row picked several times collects all their gradients.
/// Indices must be in 0..<N (callers validate user input before it reaches a kernel).
public func gatherRows(_ table: Tensor, _ rows: [Int32]) -> Tensor {
    precondition(table.shape.count == 2, "gatherRows: table \(table.shape) must be [N, C]")
    let N = table.shape[0], C = table.shape[1]
    let out = Tensor(uninitialized: [rows.count, C])
    let t = table.data, o = out.data
    for (n, id) in rows.enumerated() {
        precondition(id >= 0 && Int(id) < N, "gatherRows: row \(id) outside 0..<\(N)")
        (o + n * C).update(from: t + Int(id) * C, count: C)
    }
    out.record([table]) { out in
        let dy = out.grad, dt = table.grad
        for (n, id) in rows.enumerated() {
            let dst = dt + Int(id) * C, src = dy + n * C
            for c in 0..<C { dst[c] += src[c] }
        }
    }
    return out
}

/// The rows of each part [Mᵢ, C], one part after another → [ΣMᵢ, C]. Backward splits the gradient.
public func concatRows(_ parts: [Tensor]) -> Tensor {
    precondition(!parts.isEmpty && parts.allSatisfy { $0.shape.count == 2 && $0.shape[1] == parts[0].shape[1] },
                 "concatRows: \(parts.map(\.shape))")
    let out = Tensor(uninitialized: [parts.reduce(0) { $0 + $1.shape[0] }, parts[0].shape[1]])
    var offset = 0
    for part in parts {
        (out.data + offset).update(from: part.data, count: part.count)
        offset += part.count
    }
    out.record(parts) { out in
        var offset = 0
        for part in parts {
            if part.requiresGrad { let dp = part.grad, dy = out.grad + offset; for i in 0..<part.count { dp[i] += dy[i] } }
            offset += part.count
        }
    }
    return out
}

/// Columns `range` of every row of x [..., D] → [..., range.count]: one part of a row that holds
/// several (MLA's q = [q_nope | q_rope] per head, the latent [c_KV | k_rope]). Backward adds the
/// gradient into those columns.
public func columns(_ x: Tensor, _ range: Range<Int>) -> Tensor {
    let D = x.shape.last!, W = range.count, rows = x.count / D
    precondition(range.lowerBound >= 0 && range.upperBound <= D && W > 0, "columns: \(range) of \(x.shape)")
    let out = Tensor(uninitialized: Array(x.shape.dropLast()) + [W])
    let xp = x.data + range.lowerBound, o = out.data
    for r in 0..<rows { (o + r * W).update(from: xp + r * D, count: W) }
    out.record([x]) { out in
        let dy = out.grad, dx = x.grad + range.lowerBound
        for r in 0..<rows {
            let src = dy + r * W, dst = dx + r * D
            for c in 0..<W { dst[c] += src[c] }
        }
    }
    return out
}

/// Each head of a [N, H, A] followed by the matching head of b [N, H, Bd] → [N, H, A + Bd]; b may
/// have one head for all (MLA's RoPE key, shared by every head), whose gradient then sums over heads.
public func concatHeads(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.shape.count == 3 && b.shape.count == 3 && a.shape[0] == b.shape[0] && (b.shape[1] == a.shape[1] || b.shape[1] == 1),
                 "concatHeads: \(a.shape) and \(b.shape)")
    let N = a.shape[0], H = a.shape[1], A = a.shape[2], Bd = b.shape[2], W = A + Bd
    let bHeads = b.shape[1]
    let out = Tensor(uninitialized: [N, H, W])
    let ap = a.data, bp = b.data, o = out.data
    for n in 0..<N {
        for h in 0..<H {
            (o + (n * H + h) * W).update(from: ap + (n * H + h) * A, count: A)
            (o + (n * H + h) * W + A).update(from: bp + (n * bHeads + (bHeads == 1 ? 0 : h)) * Bd, count: Bd)
        }
    }
    out.record([a, b]) { out in
        let dy = out.grad
        let da = a.requiresGrad ? a.grad : nil, db = b.requiresGrad ? b.grad : nil
        for n in 0..<N {
            for h in 0..<H {
                let row = dy + (n * H + h) * W
                if let da { let d = da + (n * H + h) * A; for c in 0..<A { d[c] += row[c] } }
                if let db { let d = db + (n * bHeads + (bHeads == 1 ? 0 : h)) * Bd; for c in 0..<Bd { d[c] += row[A + c] } }
            }
        }
    }
    return out
}
