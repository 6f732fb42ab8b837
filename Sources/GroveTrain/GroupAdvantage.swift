/// How group-relative advantages are scaled (TRL's `scale_rewards`).
public enum AdvantageScaling: Equatable {
    /// (r − mean_group) / (std_group + ε): DeepSeekMath's GRPO.
    case group
    /// (r − mean_group) / (std_batch + ε).
    case batch
    /// r − mean_group, unscaled: Dr. GRPO.
    case none
}

/// Group-relative advantages, one pure function.
///
///   A_i = (r_i − mean_g(r)) / (std_g(r) + ε)
///
/// Conventions, pinned to TRL 1.16 (`grpo_trainer.py`, sum_then_normalize): the reward of a
/// completion is the weighted sum of its functions' values, skipping functions that returned
/// nil ("not applicable"); a completion that no function scored (nil reward) is left out of
/// its group's mean and std and gets A = 0; std is the sample std (n − 1 denominator; a group
/// with fewer than two scored completions has std NaN, hence A = 0); ε = 1e-4; any NaN
/// advantage becomes 0, so a group whose rewards are all equal gives zeros, never NaN.
public enum GroupAdvantage {
    public static let epsilon = 1e-4

    /// Weighted sum per completion: Σ_f w_f · r_f over the functions that scored it; nil if none did.
    public static func totalRewards(_ perFunction: [[Double?]], weights: [Double]) -> [Double?] {
        perFunction.map { values in
            let scored = zip(values, weights).compactMap { v, w in v.map { $0 * w } }
            return scored.isEmpty ? nil : scored.reduce(0, +)
        }
    }

    /// Advantages for rewards laid out group after group (`groupSize` consecutive completions per prompt).
    public static func compute(_ rewards: [Double?], groupSize G: Int, scaling: AdvantageScaling) -> [Double] {
        precondition(G > 0 && rewards.count % G == 0, "rewards must fill whole groups of \(G)")
        let batchStd = meanStd(rewards.compactMap { $0 }).1
        var out = [Double](repeating: 0, count: rewards.count)
        for start in stride(from: 0, to: rewards.count, by: G) {
            let group = rewards[start..<start + G]
            let (mean, std) = meanStd(group.compactMap { $0 })
            for (i, r) in zip(start..., group) {
                guard let r else { continue }
                let a: Double
                switch scaling {
                case .group: a = (r - mean) / (std + epsilon)
                case .batch: a = (r - mean) / (batchStd + epsilon)
                case .none: a = r - mean
                }
                out[i] = a.isNaN ? 0 : a
            }
        }
        return out
    }

    /// Mean and sample std (n − 1); NaN where undefined (no value; one value for the std).
    /// Sums of x/n and of squared deviations in units of the largest one: no finite reward overflows them.
    static func meanStd(_ xs: [Double]) -> (mean: Double, std: Double) {
        guard !xs.isEmpty else { return (.nan, .nan) }
        let n = Double(xs.count)
        let m = xs.reduce(0) { $0 + $1 / n }
        guard xs.count > 1 else { return (m, .nan) }
        let scale = xs.map { abs($0 - m) }.max()!
        guard scale > 0 else { return (m, 0) }
        return (m, scale * (xs.reduce(0) { $0 + (($1 - m) / scale) * (($1 - m) / scale) } / (n - 1)).squareRoot())
    }

    /// Per-group statistics for logs and the rollout store: mean, std (0 for a single value),
    /// and whether the group carries no signal (all scored rewards equal, or fewer than two).
    public static func groupStatistics(_ rewards: [Double?], groupSize G: Int) -> [(mean: Double, std: Double, zeroStd: Bool)] {
        stride(from: 0, to: rewards.count, by: G).map { start in
            let (m, s) = meanStd(rewards[start..<start + G].compactMap { $0 })
            let std = s.isNaN ? 0 : s
            return (m, std, std == 0)
        }
    }
}
