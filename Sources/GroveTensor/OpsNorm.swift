import Foundation

/// RMSNorm over the last dimension: y = x · rstd · w, rstd = 1/√(mean(x²) + eps).
/// x [..., C], weight [C]. Backward, with n = x·rstd and dn = dy·w:
///   dx = rstd · (dn − n · mean(dn·n)),  dw += Σ_rows dy·n
public func rmsNorm(_ x: Tensor, _ weight: Tensor, eps: Float) -> Tensor {
    let C = weight.count
    precondition(x.shape.last == C, "rmsNorm: \(x.shape) with weight \(weight.shape)")
    let N = x.count / C
    let out = Tensor(uninitialized: x.shape)
    let saved = Storage(count: N, zeroed: false), rstd = saved.base  // (N) saved for backward
    let xp = x.data, w = weight.data, o = out.data
    Parallel.forEach(N, grain: 64) { rows in
        for r in rows {
            let xr = xp + r * C, or = o + r * C
            var ss: Float = 0
            for c in 0..<C { ss += xr[c] * xr[c] }
            let s = 1 / (ss / Float(C) + eps).squareRoot()
            rstd[r] = s
            for c in 0..<C { or[c] = xr[c] * s * w[c] }
        }
    }
    out.record([x, weight]) { out in
        let dy = out.grad, rs = saved.base
        if x.requiresGrad {
            let dx = x.grad
            Parallel.forEach(N, grain: 64) { rows in
                for r in rows {
                    let xr = xp + r * C, gr = dy + r * C, dxr = dx + r * C, s = rs[r]
                    var dot: Float = 0  // Σ dn·n
                    for c in 0..<C { dot += gr[c] * w[c] * xr[c] * s }
                    let m = dot / Float(C)
                    for c in 0..<C { dxr[c] += s * (gr[c] * w[c] - xr[c] * s * m) }
                }
            }
        }
        if weight.requiresGrad {
            let dw = weight.grad
            for r in 0..<N {
                let xr = xp + r * C, gr = dy + r * C, s = rs[r]
                for c in 0..<C { dw[c] += gr[c] * xr[c] * s }
            }
        }
    }
    return out
}
