// The worked example of Rewards/README.md ("Adding a Swift reward"), compiled by the test suite.
// From `import GroveConfig` on, this file must stay identical to the README's code block (the file
// Rewards/KeywordReward.swift would be): RewardRegistryTests checks it. `Rewards` is imported here
// only because a test target is not the Rewards module.
import Rewards

import GroveConfig
import GroveRollout

/// 1 when the completion contains `word`, else 0.
public struct KeywordReward: Reward {
    public let name: String
    public let word: String

    public init(name: String = "keyword", word: String) {
        self.name = name; self.word = word
    }

    public func score(_ batch: [RewardInput]) throws -> RewardOutput {
        RewardOutput(values: batch.map { $0.completion.contains(word) ? 1 : 0 })
    }
}

extension KeywordReward: RecipeReward {
    public static let recipeKey = "keyword"
    public static let recipeFields = ["name", "word"]

    /// `- keyword: {word: "####", name: answer_marker}`.
    public static func read(_ f: Fields) throws -> (RewardContext) throws -> Reward {
        let word = try f.reader.string(try f.required("word"), f.path("word"))
        if word.isEmpty { throw f.reader.error(f["word"]!, f.path("word"), "must not be empty") }
        let reward = KeywordReward(name: try f.string("name") ?? "keyword", word: word)
        return { _ in reward }
    }
}
