import Foundation

/// Learning rate over steps, as a multiple of the base rate.
public enum LearningRateSchedule: Equatable {
    case constant
    /// Linear warm-up from 0, then half a cosine down to `minRatio` at `totalSteps`
    /// (HF's `get_cosine_schedule_with_warmup` when minRatio = 0).
    case warmupCosine(warmupSteps: Int, totalSteps: Int, minRatio: Float)
    /// Linear warm-up from 0, then linearly down to 0 at `totalSteps` (TRL's default,
    /// HF's `get_linear_schedule_with_warmup`).
    case warmupLinear(warmupSteps: Int, totalSteps: Int)
    /// Linear warm-up, then multiplied by `gamma` every `stepSize` steps.
    case warmupStep(warmupSteps: Int, stepSize: Int, gamma: Float)

    /// The same shape over `steps` steps instead of `from` (every step count scaled by steps / from,
    /// at least 1): a warm restart of a schedule for a run of another length.
    public func stretched(from: Int, to steps: Int) -> LearningRateSchedule {
        func scale(_ n: Int) -> Int { n == 0 ? 0 : max(1, Int((Double(n) * Double(steps) / Double(max(from, 1))).rounded())) }
        switch self {
        case .constant: return .constant
        case .warmupCosine(let warmup, _, let minRatio): return .warmupCosine(warmupSteps: scale(warmup), totalSteps: steps, minRatio: minRatio)
        case .warmupLinear(let warmup, _): return .warmupLinear(warmupSteps: scale(warmup), totalSteps: steps)
        case .warmupStep(let warmup, let size, let gamma): return .warmupStep(warmupSteps: scale(warmup), stepSize: scale(size), gamma: gamma)
        }
    }

    /// The rate at 0-based `step`.
    public func lr(step: Int, base: Float) -> Float {
        switch self {
        case .constant:
            return base
        case .warmupCosine(let warmup, let total, let minRatio):
            if step < warmup { return base * Float(step) / Float(max(1, warmup)) }
            let progress = min(1, Float(step - warmup) / Float(max(1, total - warmup)))
            return base * (minRatio + (1 - minRatio) * 0.5 * (1 + cosf(.pi * progress)))
        case .warmupLinear(let warmup, let total):
            if step < warmup { return base * Float(step) / Float(max(1, warmup)) }
            return base * max(0, Float(total - step) / Float(max(1, total - warmup)))
        case .warmupStep(let warmup, let size, let gamma):
            if step < warmup { return base * Float(step) / Float(max(1, warmup)) }
            return base * powf(gamma, Float((step - warmup) / max(1, size)))
        }
    }
}
