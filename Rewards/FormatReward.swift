import Foundation
import GroveConfig
import GroveRollout

/// 1 when the completion matches a regular expression from its start (as TRL's format rewards
/// use `re.match` with DOTALL: `.` also matches newlines), else 0. Also the recipe's
/// declarative `regex` rule.
public struct FormatReward: Reward {
    public let name: String
    public let pattern: String
    let regex: NSRegularExpression

    public init(name: String = "format", pattern: String) throws {
        self.name = name
        self.pattern = pattern
        do { regex = try NSRegularExpression(pattern: pattern, options: [.dotMatchesLineSeparators]) } catch {
            throw RewardError(reward: name, message: "invalid regular expression '\(pattern)'")
        }
    }

    public func score(_ batch: [RewardInput]) throws -> RewardOutput {
        RewardOutput(values: batch.map { item in
            let range = NSRange(item.completion.startIndex..., in: item.completion)
            return regex.firstMatch(in: item.completion, options: [.anchored], range: range) != nil ? 1 : 0
        })
    }
}

extension FormatReward: RecipeReward {
    public static let recipeKey = "regex"
    public static let recipeFields = ["name", "pattern"]

    /// `- regex: {name: format, pattern: '^<think>.*</think>'}`.
    public static func read(_ f: Fields) throws -> (RewardContext) throws -> Reward {
        let pattern = try f.reader.string(try f.required("pattern"), f.path("pattern"))
        guard let reward = try? FormatReward(name: try f.string("name") ?? "format", pattern: pattern) else {
            throw f.reader.error(f["pattern"]!, f.path("pattern"), "not a valid regular expression")
        }
        return { _ in reward }
    }
}
