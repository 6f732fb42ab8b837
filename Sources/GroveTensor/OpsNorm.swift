import CGroveKernels
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
        for r in rows { rstd[r] = grove_rms_norm_row(xp + r * C, w, o + r * C, Int32(C), eps) }
    }
    out.record([x, weight]) { out in
        let dy = out.grad, rs = saved.base
        if x.requiresGrad {
            let dx = x.grad
            Parallel.forEach(N, grain: 64) { rows in
                let dn = UnsafeMutablePointer<Float>.allocate(capacity: C)  // dy·w of one row, this worker's
                defer { dn.deallocate() }
                for r in rows { grove_rms_norm_backward_row(xp + r * C, w, dy + r * C, rs[r], dx + r * C, dn, Int32(C)) }
            }
        }
        if weight.requiresGrad {
            let dw = weight.grad
            for r in 0..<N { grove_rms_norm_weight_grad_row(xp + r * C, dy + r * C, rs[r], dw, Int32(C)) }
        }
    }
    return out
}
