/// Rows of `table` [V, C] picked by `ids` (N) → [N, C]. Backward scatters rows into dtable.
/// Ids must be in 0..<V (callers validate user input before it reaches a kernel).
public func embedding(_ ids: [Int32], _ table: Tensor) -> Tensor {
    let V = table.shape[0], C = table.shape[1], N = ids.count
    let out = Tensor(uninitialized: [N, C])
    let t = table.data, o = out.data
    for (n, id) in ids.enumerated() {
        precondition(id >= 0 && Int(id) < V, "embedding: id \(id) outside 0..<\(V)")
        (o + n * C).update(from: t + Int(id) * C, count: C)
    }
    out.record([table]) { out in
        let dy = out.grad, dt = table.grad
        for (n, id) in ids.enumerated() {
            let dst = dt + Int(id) * C, src = dy + n * C
            for c in 0..<C { dst[c] += src[c] }
        }
    }
    return out
}
