import CGroveKernels
import Foundation

/// AdamW with decoupled weight decay (Loshchilov & Hutter; PyTorch's `torch.optim.AdamW`):
///
///   p ← p − lr·λ·p                      (decay, only for parameters flagged to decay)
///   m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²
///   p ← p − lr · (m / (1 − β1ᵗ)) / (√(v / (1 − β2ᵗ)) + ε)
///
/// Defaults follow DeepSeek-V2: β1 0.9, β2 0.95, weight decay 0.1.
public final class AdamW {
    public let parameters: [Tensor]
    let decays: [Bool]
    public let beta1, beta2, eps, weightDecay: Float
    /// Steps taken (t in the bias corrections).
    public private(set) var stepCount = 0
    private let m: [Tensor], v: [Tensor]

    public init(parameters: [(Tensor, decay: Bool)], beta1: Float = 0.9, beta2: Float = 0.95, eps: Float = 1e-8,
                weightDecay: Float = 0.1) {
        self.parameters = parameters.map(\.0)
        decays = parameters.map(\.decay)
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
        m = self.parameters.map { Tensor(zeros: $0.shape) }
        v = self.parameters.map { Tensor(zeros: $0.shape) }
    }

    /// One update from the parameters' accumulated gradients (a parameter with no gradient is skipped).
    public func step(lr: Float) {
        stepCount += 1
        let c1 = 1 - powf(beta1, Float(stepCount)), c2 = 1 - powf(beta2, Float(stepCount))
        let b1 = beta1, b2 = beta2, eps = eps
        for (i, p) in parameters.enumerated() where p.gradStorage != nil {
            let w = p.data, g = p.grad, mp = m[i].data, vp = v[i].data, n = p.count
            let decay: Float = decays[i] ? 1 - lr * weightDecay : 1
            Parallel.forEach(n, grain: 1 << 15) { range in
                let j = range.lowerBound
                grove_adamw(w + j, g + j, mp + j, vp + j, range.count, b1, b2, lr, c1, c2, eps, decay)
            }
        }
    }

    /// Moments and step count as named tensors, for checkpoints (`m.<i>`, `v.<i>`, `step`).
    public func state() -> [(String, Tensor)] {
        var out: [(String, Tensor)] = [("step", Tensor([Float(stepCount)], shape: [1]))]
        for i in parameters.indices { out.append(("m.\(i)", m[i])); out.append(("v.\(i)", v[i])) }
        return out
    }

    /// Restores `state()`; shapes must match the parameters.
    public func loadState(_ state: [String: Tensor]) throws {
        guard let step = state["step"], step.count == 1 else { throw TensorError.badOptimizerState("no 'step' entry") }
        // Checked here, where the file's values enter: Int(NaN) would trap, and a NaN moment
        // would poison every later update.
        guard step.item.isFinite, step.item >= 0, step.item < 1e12 else {
            throw TensorError.badOptimizerState("'step' is \(step.item), not a step count")
        }
        for i in parameters.indices {
            for (name, mine) in [("m.\(i)", m[i]), ("v.\(i)", v[i])] {
                guard let saved = state[name], saved.shape == mine.shape else {
                    throw TensorError.badOptimizerState("'\(name)' missing or not of shape \(mine.shape)")
                }
                if let bad = saved.buffer.first(where: { !$0.isFinite || (name.hasPrefix("v") && $0 < 0) }) {
                    throw TensorError.badOptimizerState("'\(name)' holds \(bad)")
                }
                mine.copy(from: saved)
            }
        }
        stepCount = Int(step.item)
    }
}

/// Scales all gradients so their global L2 norm is at most `maxNorm`, as
/// `torch.nn.utils.clip_grad_norm_`: factor maxNorm / (norm + 1e-6) when norm > maxNorm.
/// Returns the norm before clipping; a NaN or inf norm is returned untouched (callers stop the step).
@discardableResult
public func clipGradNorm(_ parameters: [Tensor], maxNorm: Float) -> Float {
    var total: Double = 0
    for p in parameters where p.gradStorage != nil {
        total += grove_sum_squares(p.grad, p.count)
    }
    let norm = Float(total.squareRoot())
    guard norm.isFinite, norm > maxNorm else { return norm }
    let factor = maxNorm / (norm + 1e-6)
    for p in parameters where p.gradStorage != nil {
        let g = p.grad
        for i in 0..<p.count { g[i] *= factor }
    }
    return norm
}
