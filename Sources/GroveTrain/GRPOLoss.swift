import Foundation
import GroveTensor

/// How per-token losses are averaged (TRL's `loss_type`).
public enum LossAggregation: Equatable {
    /// Mean over each sequence's tokens, then over sequences (DeepSeekMath GRPO).
    case perSequence
    /// Mean over every token of the batch (TRL's bnpo and dapo on one process).
    case perToken
    /// Sum over tokens divided by batch size × a constant length (Dr. GRPO; TRL uses max_completion_length).
    case constantLength(Int)
}

/// Settings of the clipped objective.
public struct GRPOLossConfig: Equatable {
    public var beta: Double
    public var epsilonLow: Double
    public var epsilonHigh: Double
    public var aggregation: LossAggregation

    public init(beta: Double = 0.04, epsilonLow: Double = 0.2, epsilonHigh: Double? = nil, aggregation: LossAggregation = .perSequence) {
        self.beta = beta; self.epsilonLow = epsilonLow; self.epsilonHigh = epsilonHigh ?? epsilonLow; self.aggregation = aggregation
    }

    /// Log-ratios are clamped to ±logRatioBound before `exp`. Clamping only the KL's output would
    /// still let exp overflow to inf in the backward pass (inf · 0 = NaN); e²⁰ ≈ 4.9e8 is far beyond
    /// any ratio the clip lets through and still finite in float32 arithmetic.
    public static let logRatioBound = 20.0
}

/// What the loss is averaged over: the whole batch of rollouts. A batch fed to the model in
/// several micro-batches passes the whole batch's sizes to each call, so the calls' losses
/// and gradients add up to those of one call on the whole batch.
public struct LossNormalizer: Equatable {
    /// Completions in the whole batch.
    public var sequences: Int
    /// Completion tokens (mask entries) in the whole batch.
    public var tokens: Int

    public init(sequences: Int, tokens: Int) { self.sequences = sequences; self.tokens = tokens }
}

/// Metrics of one loss evaluation, named as TRL logs them; `merge` combines micro-batches.
public struct GRPOLossMetrics {
    /// Completion tokens seen, and the sums the means are taken of.
    public var tokens = 0, klSum = 0.0, clipLowCount = 0, clipHighCount = 0
    /// Over sequences: the smallest fraction of low-clipped tokens, the largest of high-clipped ones.
    public var clipLowMin = Double.nan, clipHighMax = Double.nan

    public var kl: Double { klSum / Double(max(tokens, 1)) }
    public var clipLowMean: Double { Double(clipLowCount) / Double(max(tokens, 1)) }
    public var clipHighMean: Double { Double(clipHighCount) / Double(max(tokens, 1)) }
    public var clipRegionMean: Double { Double(clipLowCount + clipHighCount) / Double(max(tokens, 1)) }

    /// Adds another micro-batch's metrics.
    public mutating func merge(_ other: GRPOLossMetrics) {
        tokens += other.tokens; klSum += other.klSum
        clipLowCount += other.clipLowCount; clipHighCount += other.clipHighCount
        clipLowMin = [clipLowMin, other.clipLowMin].filter { !$0.isNaN }.min() ?? .nan
        clipHighMax = [clipHighMax, other.clipHighMax].filter { !$0.isNaN }.max() ?? .nan
    }
}

/// The GRPO objective for a batch of B completions padded to T tokens (one pure function):
///
///   ρ = exp(logπ_θ − logπ_old),  KL = exp(logπ_ref − logπ_θ) − (logπ_ref − logπ_θ) − 1
///   ℓ_t = −min(ρ·A, clip(ρ, 1−ε_low, 1+ε_high)·A) + β·KL
///   loss = aggregation of ℓ over the completion mask
///
/// `logp` (B·T) is the differentiable log-probability of each sampled token under the policy;
/// `old` and `ref` are constants (nil `ref`: β must be 0). Gradient, per unmasked token with weight w:
///   dℓ/dlogp = −A·ρ where the unclipped term is the minimum (else 0), + β·(1 − exp(ref − logp)).
/// `normalizer`: the sizes of the whole batch when these B rows are one micro-batch of it
/// (nil: these rows are the whole batch).
public func grpoLoss(logp: Tensor, old: [Float], ref: [Float]?, advantages: [Float], mask: [Bool],
                     batch B: Int, config: GRPOLossConfig, normalizer: LossNormalizer? = nil) -> (loss: Tensor, metrics: GRPOLossMetrics) {
    let T = logp.count / B
    precondition(old.count == B * T && mask.count == B * T && advantages.count == B, "grpoLoss: shapes")
    precondition(ref != nil || config.beta == 0, "grpoLoss: β ≠ 0 needs reference log-probs")
    let bound = GRPOLossConfig.logRatioBound
    let lengths = (0..<B).map { b in (0..<T).reduce(0) { $0 + (mask[b * T + $1] ? 1 : 0) } }
    let total = lengths.reduce(0, +)
    let whole = normalizer ?? LossNormalizer(sequences: B, tokens: total)
    // Weight of each token in the aggregate.
    func weight(_ b: Int) -> Double {
        switch config.aggregation {
        case .perSequence: return 1 / (Double(whole.sequences) * Double(max(lengths[b], 1)))
        case .perToken: return 1 / Double(max(whole.tokens, 1))
        case .constantLength(let L): return 1 / (Double(whole.sequences) * Double(L))
        }
    }
    var loss = 0.0, m = GRPOLossMetrics()
    var seqLow: [Double] = [], seqHigh: [Double] = []
    var grad = [Double](repeating: 0, count: B * T)  // d loss / d logp
    for b in 0..<B {
        let A = Double(advantages[b]), w = weight(b)
        var bl = 0, bh = 0
        for t in 0..<T where mask[b * T + t] {
            let i = b * T + t, lp = Double(logp.data[i])
            let rho = exp(min(max(lp - Double(old[i]), -bound), bound))
            let clipped = min(max(rho, 1 - config.epsilonLow), 1 + config.epsilonHigh)
            let unclippedIsMin = rho * A <= clipped * A
            var l = -min(rho * A, clipped * A)
            var g = unclippedIsMin ? -A * rho : 0
            if let ref, config.beta != 0 {
                let d = min(max(Double(ref[i]) - lp, -bound), bound)
                let kl = exp(d) - d - 1
                l += config.beta * kl
                g += config.beta * (1 - exp(d))
                m.klSum += kl
            }
            loss += w * l
            grad[i] = w * g
            if rho < 1 - config.epsilonLow && A < 0 { bl += 1 }
            if rho > 1 + config.epsilonHigh && A > 0 { bh += 1 }
        }
        m.clipLowCount += bl; m.clipHighCount += bh
        seqLow.append(lengths[b] > 0 ? Double(bl) / Double(lengths[b]) : .nan)
        seqHigh.append(lengths[b] > 0 ? Double(bh) / Double(lengths[b]) : .nan)
    }
    m.tokens = total
    m.clipLowMin = seqLow.filter { !$0.isNaN }.min() ?? .nan
    m.clipHighMax = seqHigh.filter { !$0.isNaN }.max() ?? .nan

    let out = Tensor([Float(loss)], shape: [1])
    out.record([logp]) { out in
        let g = out.grad[0], dl = logp.grad
        for i in 0..<grad.count { dl[i] += g * Float(grad[i]) }
    }
    return (out, m)
}
