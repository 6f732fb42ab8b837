import CGroveKernels
import Foundation

// Elementwise ops. Each loop runs on unsafe pointers over contiguous storage.

/// a + b, same shapes.
public func add(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.shape == b.shape, "add: \(a.shape) + \(b.shape)")
    let out = Tensor(uninitialized: a.shape), n = a.count
    let x = a.data, y = b.data, o = out.data
    for i in 0..<n { o[i] = x[i] + y[i] }
    out.record([a, b]) { out in
        let g = out.grad
        if a.requiresGrad { let da = a.grad; for i in 0..<n { da[i] += g[i] } }
        if b.requiresGrad { let db = b.grad; for i in 0..<n { db[i] += g[i] } }
    }
    return out
}

/// x + bias broadcast over rows: x [..., C], bias [C].
public func addBias(_ x: Tensor, _ bias: Tensor) -> Tensor {
    let C = bias.count
    precondition(x.shape.last == C, "addBias: \(x.shape) + \(bias.shape)")
    let out = Tensor(uninitialized: x.shape), rows = x.count / C
    let xp = x.data, bp = bias.data, o = out.data
    for r in 0..<rows { for c in 0..<C { o[r * C + c] = xp[r * C + c] + bp[c] } }
    out.record([x, bias]) { out in
        let g = out.grad
        if x.requiresGrad { let dx = x.grad; for i in 0..<x.count { dx[i] += g[i] } }
        if bias.requiresGrad { let db = bias.grad; for r in 0..<rows { for c in 0..<C { db[c] += g[r * C + c] } } }
    }
    return out
}

/// a ⊙ b, same shapes.
public func mul(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.shape == b.shape, "mul: \(a.shape) * \(b.shape)")
    let out = Tensor(uninitialized: a.shape), n = a.count
    let x = a.data, y = b.data, o = out.data
    for i in 0..<n { o[i] = x[i] * y[i] }
    out.record([a, b]) { out in
        let g = out.grad
        if a.requiresGrad { let da = a.grad; for i in 0..<n { da[i] += g[i] * y[i] } }
        if b.requiresGrad { let db = b.grad; for i in 0..<n { db[i] += g[i] * x[i] } }
    }
    return out
}

/// s · a for a constant s.
public func scale(_ a: Tensor, _ s: Float) -> Tensor {
    let out = Tensor(uninitialized: a.shape), n = a.count
    let x = a.data, o = out.data
    for i in 0..<n { o[i] = x[i] * s }
    out.record([a]) { out in
        let g = out.grad, da = a.grad
        for i in 0..<n { da[i] += g[i] * s }
    }
    return out
}

/// silu(x) = x·σ(x).
public func silu(_ a: Tensor) -> Tensor {
    let out = Tensor(uninitialized: a.shape), n = a.count
    let x = a.data, o = out.data
    for i in 0..<n { o[i] = x[i] / (1 + expf(-x[i])) }
    out.record([a]) { out in
        let g = out.grad, da = a.grad
        for i in 0..<n {  // d silu/dx = σ(x)·(1 + x·(1 − σ(x)))
            let s = 1 / (1 + expf(-x[i]))
            da[i] += g[i] * s * (1 + x[i] * (1 - s))
        }
    }
    return out
}

/// SwiGLU: silu(gate) ⊙ up, fused so the silu output is never stored.
public func swiglu(_ gate: Tensor, _ up: Tensor) -> Tensor {
    precondition(gate.shape == up.shape, "swiglu: \(gate.shape) vs \(up.shape)")
    let out = Tensor(uninitialized: gate.shape), n = gate.count
    let g = gate.data, u = up.data, o = out.data
    Parallel.forEach(n, grain: 1 << 14) { r in
        grove_swiglu(g + r.lowerBound, u + r.lowerBound, o + r.lowerBound, Int32(r.count))
    }
    out.record([gate, up]) { out in
        let dy = out.grad
        let dg = gate.requiresGrad ? gate.grad : nil, du = up.requiresGrad ? up.grad : nil
        Parallel.forEach(n, grain: 1 << 14) { r in
            let i = r.lowerBound
            grove_swiglu_backward(g + i, u + i, dy + i, dg.map { $0 + i }, du.map { $0 + i }, Int32(r.count))
        }
    }
    return out
}
