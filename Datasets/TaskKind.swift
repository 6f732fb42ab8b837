import Foundation

/// The answer checkers Grove knows, by the name a recipe gives them (`data.task`).
/// Evaluation uses them for `eval/accuracy`; the GRPO stage reuses them as rewards.
public enum TaskKind: String, CaseIterable {
    /// Built-in arithmetic: the integer after `####` equals the row's `answer`.
    case arithmetic
    /// Built-in countdown: the expression after `####` uses the row's `numbers` once each and equals `target`.
    case countdown
    /// GSM8K-style: the number after the last `####` equals the number after `####` in the reference field.
    case gsm8k
    /// Free-form: the last number in the completion equals the row's `answer` (chat models that
    /// answer in prose, "… so 45 + 38 = 83.").
    case lastNumber = "last_number"

    /// What a row lacks for this checker to judge it (nil: nothing): without it every
    /// completion would silently score 0.
    public func missingReference(in row: [String: Any]) -> String? {
        switch self {
        case .arithmetic, .gsm8k: return row["answer"] is String ? nil : "a text field 'answer' (the reference answer)"
        case .lastNumber: return TaskKind.number(row["answer"]) != nil ? nil : "a field 'answer' holding a number"
        case .countdown: return row["numbers"] is [Int] && row["target"] is Int ? nil : "fields 'numbers' (a list of integers) and 'target' (an integer)"
        }
    }

    /// Judges a completion against the dataset row it answers. `referenceField` names the
    /// row's field with the reference answer for `.gsm8k` (its `answer` by default).
    public func isCorrect(_ completion: String, row: [String: Any], referenceField: String = "answer") -> Bool {
        switch self {
        case .arithmetic:
            guard let answer = row["answer"] as? String else { return false }
            return ArithmeticTask.isCorrect(completion: completion, answer: answer)
        case .countdown:
            guard let numbers = row["numbers"] as? [Int], let target = row["target"] as? Int else { return false }
            return CountdownTask.isCorrect(completion: completion, numbers: numbers, target: target)
        case .gsm8k:
            guard let reference = row[referenceField] as? String else { return false }
            let expected = finalInteger(reference) ?? Int(reference.trimmingCharacters(in: .whitespaces))
            return expected != nil && finalInteger(completion) == expected
        case .lastNumber:
            guard let expected = TaskKind.number(row["answer"]) else { return false }
            return GroveTasks.lastNumber(completion) == expected
        }
    }

    /// A reference answer given as a JSON number or as text ("83", "1,234").
    static func number(_ value: Any?) -> Double? {
        if let n = value as? NSNumber { return n.doubleValue }
        return (value as? String).flatMap { parseNumber($0) }
    }
}
