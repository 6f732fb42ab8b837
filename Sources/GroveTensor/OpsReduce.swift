/// Σ x, a scalar of shape [1].
public func sum(_ a: Tensor) -> Tensor {
    let out = Tensor(zeros: [1]), n = a.count, x = a.data
    var s: Double = 0  // Double accumulation: sums of 10⁶ floats lose digits otherwise
    for i in 0..<n { s += Double(x[i]) }
    out.data[0] = Float(s)
    out.record([a]) { out in
        let g = out.grad[0], da = a.grad
        for i in 0..<n { da[i] += g }
    }
    return out
}

/// (1/n) Σ x, a scalar of shape [1].
public func mean(_ a: Tensor) -> Tensor { scale(sum(a), 1 / Float(a.count)) }
