import Foundation

/// What a reward function sees of one completion: the prompt and completion text, the
/// completion's token ids, and the whole dataset row it answers (so a checker can reach the
/// reference answer or any other field).
public struct RewardInput {
    public let prompt: String
    public let completion: String
    public let completionIds: [Int32]
    public let row: [String: Any]

    public init(prompt: String, completion: String, completionIds: [Int32], row: [String: Any]) {
        self.prompt = prompt; self.completion = completion; self.completionIds = completionIds; self.row = row
    }
}

/// A reward function's answer for a batch: one value per completion, nil for "not applicable"
/// (left out of its group's statistics, as TRL does with None), and optional extra columns
/// that the rollout store keeps beside the rewards.
public struct RewardOutput {
    public var values: [Double?]
    public var extras: [String: [Double?]]

    public init(values: [Double?], extras: [String: [Double?]] = [:]) {
        self.values = values; self.extras = extras
    }

    /// The largest reward magnitude accepted. NaN or infinite rewards would zero every advantage of
    /// their group without a word (TRL propagates the NaN instead); rewards this large are a bug in the
    /// reward, not a signal, and beyond 2^53 they are not even exact integers.
    public static let maxMagnitude = 1e15

    /// What is wrong with a reward value, or nil if it is usable.
    public static func problem(with value: Double) -> String? {
        if value.isNaN { return "NaN" }
        return abs(value) > maxMagnitude ? "too large (\(value); rewards must lie within ±1e15)" : nil
    }
}

/// A reward function for the GRPO stage.
///
/// ```swift
/// struct Brevity: Reward {
///     let name = "brevity"
///     func score(_ batch: [RewardInput]) throws -> RewardOutput {
///         RewardOutput(values: batch.map { -Double($0.completionIds.count) / 100 })
///     }
/// }
/// ```
public protocol Reward {
    /// A stable name: the column in the rollout store and the metric `rewards/<name>/mean`.
    var name: String { get }
    /// Scores a batch; throws `RewardError` when it cannot (never a silent zero).
    func score(_ batch: [RewardInput]) throws -> RewardOutput
}

/// Why a reward could not score a batch.
public struct RewardError: Error, CustomStringConvertible {
    public let reward: String
    public let message: String
    public init(reward: String, message: String) { self.reward = reward; self.message = message }
    public var description: String { "reward '\(reward)': \(message)" }
}

/// Several rewards with weights: the reward of a completion is Σ w_f · r_f over the functions
/// that scored it (nil when none did). A NaN, infinite or absurdly large value is an error.
public struct WeightedRewards {
    public let rewards: [(reward: Reward, weight: Double)]

    public init(_ rewards: [(reward: Reward, weight: Double)]) { self.rewards = rewards }

    /// Per-function values ([completion][function]) and the extras of every function.
    public func score(_ batch: [RewardInput]) throws -> (perFunction: [[Double?]], extras: [String: [Double?]]) {
        var columns: [[Double?]] = []
        var extras: [String: [Double?]] = [:]
        for (reward, _) in rewards {
            let out = try reward.score(batch)
            guard out.values.count == batch.count else {
                throw RewardError(reward: reward.name, message: "returned \(out.values.count) values for \(batch.count) completions")
            }
            for (i, value) in out.values.enumerated() {
                if let value, let problem = RewardOutput.problem(with: value) {
                    throw RewardError(reward: reward.name, message: "the reward of completion \(i + 1) is \(problem)")
                }
            }
            columns.append(out.values)
            for (k, v) in out.extras { extras["\(reward.name)/\(k)"] = v }
        }
        let perFunction = batch.indices.map { i in columns.map { $0[i] } }
        return (perFunction, extras)
    }

    public var weights: [Double] { rewards.map(\.weight) }
}
