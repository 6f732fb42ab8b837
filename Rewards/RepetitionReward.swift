import GroveConfig
import GroveRollout

/// Penalises repeated n-grams of tokens: r = maxPenalty · (1 − distinct n-grams / all n-grams),
/// 0 for a completion shorter than n (open-r1's repetition penalty, on token ids).
/// `maxPenalty` is negative.
public struct RepetitionReward: Reward {
    public let name: String
    public let n: Int
    public let maxPenalty: Double

    public init(name: String = "repetition", n: Int = 3, maxPenalty: Double = -1) {
        self.name = name; self.n = n; self.maxPenalty = maxPenalty
    }

    public func score(_ batch: [RewardInput]) throws -> RewardOutput {
        RewardOutput(values: batch.map { item in
            let ids = item.completionIds
            guard ids.count >= n else { return 0 }
            let grams = (0...(ids.count - n)).map { ids[$0..<$0 + n].map(String.init).joined(separator: ",") }
            return maxPenalty * (1 - Double(Set(grams).count) / Double(grams.count))
        })
    }
}

extension RepetitionReward: RecipeReward {
    public static let recipeKey = "repetition"
    public static let recipeFields = ["n", "max_penalty"]

    /// `- repetition: {n: 3, max_penalty: -1}`.
    public static func read(_ f: Fields) throws -> (RewardContext) throws -> Reward {
        let reward = RepetitionReward(n: try f.int("n", default: 3, min: 1), maxPenalty: try f.double("max_penalty", default: -1, range: -1e6...0))
        return { _ in reward }
    }
}
