import Foundation
import GroveConfig
import GroveRollout
import GroveTasks

/// 1 when the completion's final number equals the reference, else 0.
///
/// The completion's answer is found by `extraction`; the reference is the row's `field`, read
/// the same way when it holds a `####` line (GSM8K answers), else as a number. `tolerance`
/// allows |answer − reference| ≤ tolerance (0: exact).
public struct ExactAnswerReward: Reward {
    public enum Extraction: String, CaseIterable {
        /// The number after the last `####` (GSM8K).
        case gsm8k
        /// The content of the last `\boxed{…}`.
        case boxed
        /// The last number in the text.
        case lastNumber = "last_number"
    }

    public let name: String
    public let extraction: Extraction
    public let field: String
    public let tolerance: Double

    public init(name: String = "exact_answer", extraction: Extraction = .gsm8k, field: String = "answer", tolerance: Double = 0) {
        self.name = name; self.extraction = extraction; self.field = field; self.tolerance = tolerance
    }

    public func score(_ batch: [RewardInput]) throws -> RewardOutput {
        RewardOutput(values: batch.map { item in
            guard let reference = ExactAnswerReward.reference(item.row[field]) else { return nil }
            guard let answer = ExactAnswerReward.extract(item.completion, extraction) else { return 0 }
            return abs(answer - reference) <= tolerance ? 1 : 0
        })
    }

    static func reference(_ value: Any?) -> Double? {
        if let n = value as? NSNumber { return n.doubleValue }
        guard let s = value as? String else { return nil }
        return s.contains("####") ? extract(s, .gsm8k) : parseNumber(s)
    }

    /// The answer `extraction` finds in `text`.
    public static func extract(_ text: String, _ extraction: Extraction) -> Double? {
        switch extraction {
        case .gsm8k:
            return finalAnswer(text).flatMap { parseNumber($0) }
        case .boxed:
            guard let start = text.range(of: "\\boxed{", options: .backwards),
                  let end = text[start.upperBound...].firstIndex(of: "}") else { return nil }
            return parseNumber(text[start.upperBound..<end])
        case .lastNumber:
            return GroveTasks.lastNumber(text)
        }
    }
}

extension ExactAnswerReward: RecipeReward {
    public static let recipeKey = "exact_answer"
    public static let recipeFields = ["extraction", "field", "tolerance"]

    /// `- exact_answer: {extraction: gsm8k, field: answer, tolerance: 0}`.
    public static func read(_ f: Fields) throws -> (RewardContext) throws -> Reward {
        let reward = ExactAnswerReward(extraction: try f["extraction"].map { try f.reader.choice($0, f.path("extraction"), as: Extraction.self) } ?? .gsm8k,
                                       field: try f.string("field") ?? "answer",
                                       tolerance: try f.double("tolerance", default: 0, range: 0...1e12))
        return { _ in reward }
    }
}
