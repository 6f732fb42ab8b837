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

/// The rows of `a` [M, C] followed by those of `b` [N, C] → [M + N, C]. Backward splits the gradient.
public func concatRows(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.shape.count == 2 && b.shape.count == 2 && a.shape[1] == b.shape[1], "concatRows: \(a.shape) and \(b.shape)")
    let out = Tensor(uninitialized: [a.shape[0] + b.shape[0], a.shape[1]])
    out.data.update(from: a.data, count: a.count)
    (out.data + a.count).update(from: b.data, count: b.count)
    out.record([a, b]) { out in
        let dy = out.grad
        if a.requiresGrad { let da = a.grad; for i in 0..<a.count { da[i] += dy[i] } }
        if b.requiresGrad { let db = b.grad, y = dy + a.count; for i in 0..<b.count { db[i] += y[i] } }
    }
    return out
}
