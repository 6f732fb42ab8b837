import CGroveKernels
import Foundation

/// AdamW with decoupled weight decay (Loshchilov & Hutter; PyTorch's `torch.optim.AdamW`):
///
///   p ← p − lr·λ·p                      (decay, only for parameters flagged to decay)
///   m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²
///   p ← p − lr · (m / (1 − β1ᵗ)) / (√(v / (1 − β2ᵗ)) + ε)
///
/// Defaults follow DeepSeek-V2: β1 0.9, β2 0.95, weight decay 0.1.
///
/// The moments are float32 by default. `.bfloat16` keeps them in 2 bytes each, 4 bytes a
/// parameter less of the 20 that full fine-tuning with a reference model holds: the update
/// itself runs in float32, and m and v are stored with stochastic rounding (optimizer.c says why).
public final class AdamW {
    /// How the moments m and v are held between steps.
    public enum MomentStorage: String, CaseIterable, Sendable {
        /// 4 bytes a moment: PyTorch's update exactly.
        case float32
        /// 2 bytes a moment, stochastically rounded: unbiased, so the moments decay and
        /// accumulate as in float32 on average, with ~2⁻⁸ relative noise per element and step.
        case bfloat16
    }

    public let parameters: [Tensor]
    let decays: [Bool]
    public let beta1, beta2, eps, weightDecay: Float
    /// Steps taken (t in the bias corrections).
    public private(set) var stepCount = 0
    private let moments: Moments

    private enum Moments {
        case float32(m: [Tensor], v: [Tensor])
        case bfloat16(m: [BFloat16Buffer], v: [BFloat16Buffer])
    }

    /// Stochastic rounding's random bits hash (this key, step, parameter, element), never a
    /// shared generator: the same bits on any number of threads or ranks, and after a resume.
    static let roundingKey: UInt64 = 0x6164_616D_7762_6631

    public init(parameters: [(Tensor, decay: Bool)], beta1: Float = 0.9, beta2: Float = 0.95, eps: Float = 1e-8,
                weightDecay: Float = 0.1, momentStorage: MomentStorage = .float32) {
        self.parameters = parameters.map(\.0)
        decays = parameters.map(\.decay)
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
        switch momentStorage {
        case .float32:
            moments = .float32(m: self.parameters.map { Tensor(zeros: $0.shape) }, v: self.parameters.map { Tensor(zeros: $0.shape) })
        case .bfloat16:
            moments = .bfloat16(m: self.parameters.map { BFloat16Buffer(count: $0.count) }, v: self.parameters.map { BFloat16Buffer(count: $0.count) })
        }
    }

    /// One update from the parameters' accumulated gradients (a parameter with no gradient is skipped).
    public func step(lr: Float) {
        stepCount += 1
        let c1 = 1 - powf(beta1, Float(stepCount)), c2 = 1 - powf(beta2, Float(stepCount))
        let b1 = beta1, b2 = beta2, eps = eps
        for (i, p) in parameters.enumerated() where p.gradStorage != nil {
            let w = p.data, g = p.grad, n = p.count
            let decay: Float = decays[i] ? 1 - lr * weightDecay : 1
            switch moments {
            case .float32(let m, let v):
                let mp = m[i].data, vp = v[i].data
                Parallel.forEach(n, grain: 1 << 15) { range in
                    let j = range.lowerBound
                    grove_adamw(w + j, g + j, mp + j, vp + j, range.count, b1, b2, lr, c1, c2, eps, decay)
                }
            case .bfloat16(let m, let v):
                let mp = m[i].base, vp = v[i].base
                var keys = SeededRandom(seed: AdamW.roundingKey, streams: [UInt64(stepCount), UInt64(i)])
                let key = UInt32(truncatingIfNeeded: keys.next())
                Parallel.forEach(n, grain: 1 << 15) { range in
                    let j = range.lowerBound
                    grove_adamw_bf16(w + j, g + j, mp + j, vp + j, range.count, j, key, b1, b2, lr, c1, c2, eps, decay)
                }
            }
        }
    }

    /// Moments and step count as named float32 tensors, for checkpoints (`m.<i>`, `v.<i>`,
    /// `step`). bfloat16 moments are written as the float32 values they are, exactly, so a
    /// resumed run continues bit for bit; either kind of optimizer loads either kind of state.
    public func state() -> [(String, Tensor)] {
        var out: [(String, Tensor)] = [("step", Tensor([Float(stepCount)], shape: [1]))]
        for (i, p) in parameters.enumerated() {
            switch moments {
            case .float32(let m, let v): out += [("m.\(i)", m[i]), ("v.\(i)", v[i])]
            case .bfloat16(let m, let v): out += [("m.\(i)", m[i].tensor(shape: p.shape)), ("v.\(i)", v[i].tensor(shape: p.shape))]
            }
        }
        return out
    }

    /// Writes `state()` to a safetensors file; bfloat16 moments one at a time, never all of
    /// them as float32 at once (that would be 8 bytes a parameter while a checkpoint is written).
    public func writeState(to url: URL) throws {
        guard case .bfloat16(let m, let v) = moments else { return try SafetensorsFile.write(state(), to: url) }
        let entries = [("step", shape: [1])] + parameters.indices.flatMap { [("m.\($0)", shape: parameters[$0].shape), ("v.\($0)", shape: parameters[$0].shape)] }
        try SafetensorsFile.write(entries, to: url) { k, range, values in
            if k == 0 { values[0] = Float(stepCount); return }
            (k % 2 == 1 ? m : v)[(k - 1) / 2].copyValues(range, into: values)
        }
    }

    /// Restores `state()`; shapes must match the parameters. Float32 moments loaded into
    /// bfloat16 storage are rounded to nearest (a run switched to 16-bit moments on resume).
    public func loadState(_ state: [String: Tensor]) throws {
        guard let step = state["step"], step.count == 1 else { throw TensorError.badOptimizerState("no 'step' entry") }
        // Checked here, where the file's values enter: Int(NaN) would trap, and a NaN moment
        // would poison every later update.
        guard step.item.isFinite, step.item >= 0, step.item < 1e12 else {
            throw TensorError.badOptimizerState("'step' is \(step.item), not a step count")
        }
        var saved: [(m: Tensor, v: Tensor)] = []
        for (i, p) in parameters.enumerated() {
            func entry(_ name: String) throws -> Tensor {
                guard let t = state[name], t.shape == p.shape else {
                    throw TensorError.badOptimizerState("'\(name)' missing or not of shape \(p.shape)")
                }
                if let bad = t.buffer.first(where: { !$0.isFinite || (name.hasPrefix("v") && $0 < 0) }) {
                    throw TensorError.badOptimizerState("'\(name)' holds \(bad)")
                }
                return t
            }
            saved.append((try entry("m.\(i)"), try entry("v.\(i)")))
        }
        for (i, s) in saved.enumerated() {
            switch moments {
            case .float32(let m, let v): m[i].copy(from: s.m); v[i].copy(from: s.v)
            case .bfloat16(let m, let v): m[i].store(s.m); v[i].store(s.v)
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
