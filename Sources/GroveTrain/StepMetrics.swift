import Foundation
import GroveModel

/// A training step's or an evaluation's measurements as typed fields, with `named` giving them
/// under the names run.sqlite stores (TRL's names where TRL logs the same quantity).
public protocol StepMetrics {
    var named: [(String, Double)] { get }
}

/// One SFT optimizer step.
public struct SFTStepMetrics: StepMetrics {
    /// Mean next-token NLL over the batch's completion tokens.
    public var loss: Double
    public var learningRate: Double
    /// Gradient norm before clipping.
    public var gradNorm: Double
    /// Real (unpadded) tokens of the batch.
    public var tokens: Double
    public var seconds: Double
    /// Epochs of the training rows read so far.
    public var epoch: Double
    /// DeepSeekMoE: tokens per expert of each MoE layer.
    public var expertLoads: [ExpertLoad] = []

    public var named: [(String, Double)] {
        [("train/loss", loss), ("train/learning_rate", learningRate), ("train/grad_norm", gradNorm),
         ("train/tokens_per_second", tokens / seconds), ("train/step_time", seconds), ("train/epoch", epoch)]
            + expertLoadMetrics(expertLoads, prefix: "train/")
    }
}

/// One GRPO step: its rollouts' rewards and lengths, the loss's statistics, and where the time went.
public struct GRPOStepMetrics: StepMetrics {
    /// Mean and std of the total reward over every scored completion (dropped groups too).
    public var reward: Double, rewardStd: Double
    /// Share of groups whose rewards were all equal (no signal).
    public var zeroStdShare: Double
    /// The objective (first of the μ updates), and the gradient norm before clipping.
    public var loss: Double, gradNorm: Double
    public var kl: Double, entropy: Double
    public var clipLow: Double, clipHigh: Double, clipRegion: Double
    public var meanLength: Double, minLength: Double, maxLength: Double
    /// Share of completions cut by max_new_tokens.
    public var truncatedShare: Double
    public var droppedGroups: Int
    public var learningRate: Double
    public var generateSeconds: Double, scoreSeconds: Double, trainSeconds: Double, seconds: Double
    /// Prompt and completion tokens of the trained rollouts.
    public var tokens: Double
    /// DeepSeekMoE: tokens per expert of each MoE layer in the training part.
    public var expertLoads: [ExpertLoad] = []
    /// Per reward function, in the recipe's order: its mean and std over the completions it scored.
    public var perReward: [(name: String, mean: Double, std: Double)]

    public var named: [(String, Double)] {
        var out: [(String, Double)] = [
            ("reward", reward), ("reward_std", rewardStd), ("frac_reward_zero_std", zeroStdShare),
            ("kl", kl), ("entropy", entropy),
            ("clip_ratio/low_mean", clipLow), ("clip_ratio/high_mean", clipHigh), ("clip_ratio/region_mean", clipRegion),
            ("completions/mean_length", meanLength), ("completions/min_length", minLength), ("completions/max_length", maxLength),
            ("completions/clipped_ratio", truncatedShare), ("dynamic_sampling/dropped_groups", Double(droppedGroups)),
            ("learning_rate", learningRate), ("time/generate", generateSeconds), ("time/score", scoreSeconds),
            ("time/train", trainSeconds), ("time/step", seconds), ("tokens_per_second", tokens / seconds),
            ("loss", loss), ("grad_norm", gradNorm),
        ]
        for r in perReward { out += [("rewards/\(r.name)/mean", r.mean), ("rewards/\(r.name)/std", r.std)] }
        return out + expertLoadMetrics(expertLoads, prefix: "")
    }

    /// What a person should know about this step (groups without signal, completions cut short).
    public var warnings: [String] {
        var out: [String] = []
        if zeroStdShare > 0.9 { out.append("\(Int(zeroStdShare * 100))% of groups had equal rewards: they carry no signal") }
        if truncatedShare > 0.9 { out.append("\(Int(truncatedShare * 100))% of completions hit max_new_tokens: raise it or shorten answers") }
        return out
    }
}

/// A held-out evaluation: `eval/loss`, `eval/accuracy` and `eval/accuracy/<level>`, `eval/pass@k`.
public struct EvalMetrics: StepMetrics {
    public var values: [String: Double]

    public init(_ values: [String: Double]) { self.values = values }

    public subscript(_ name: String) -> Double? { values[name] }
    /// Share of held-out problems answered correctly (greedy), when the data has a checker.
    public var accuracy: Double? { values["eval/accuracy"] }
    /// Accuracy per difficulty level, when the rows have several.
    public var accuracyByLevel: [(level: String, accuracy: Double)] {
        values.filter { $0.key.hasPrefix("eval/accuracy/") }.sorted { $0.key < $1.key }
            .map { (String($0.key.dropFirst("eval/accuracy/".count)), $0.value) }
    }
    public var loss: Double? { values["eval/loss"] }
    public var named: [(String, Double)] { values.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
}

/// `moe/layer_<i>/max_tokens_per_expert` and `…/mean_tokens_per_expert` per MoE layer, and over all of them
/// `moe/max_over_mean` (1: perfectly balanced).
func expertLoadMetrics(_ loads: [ExpertLoad], prefix: String) -> [(String, Double)] {
    guard !loads.isEmpty else { return [] }
    var out: [(String, Double)] = []
    for load in loads {
        out += [("\(prefix)moe/layer_\(load.layer)/max_tokens_per_expert", load.max), ("\(prefix)moe/layer_\(load.layer)/mean_tokens_per_expert", load.mean)]
    }
    out.append(("\(prefix)moe/max_over_mean", loads.map { $0.mean > 0 ? $0.max / $0.mean : 1 }.max()!))
    return out
}
