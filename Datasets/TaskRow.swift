import Foundation

/// One row of a built-in task's JSONL file.
public struct TaskRow: Codable, Equatable {
    public var id: String
    public var prompt: String
    public var completion: String
    /// The reference final answer, as text (an integer for arithmetic, the target for countdown).
    public var answer: String
    /// Difficulty bucket, reported separately in evaluations.
    public var level: String
    /// Countdown only: the numbers to use and the value to reach.
    public var numbers: [Int]?
    public var target: Int?

    /// The row with its worked steps left out: the completion is `#### ANSWER` alone.
    public func answerOnly() -> TaskRow {
        var row = self
        row.completion = "#### \(answer)"
        return row
    }

    /// Writes rows as JSON lines (keys sorted, so files are byte-for-byte reproducible).
    /// `withCompletions: false` leaves the worked solutions out: a GRPO prompt file, which
    /// keeps only what a checker needs (prompt, answer, level).
    public static func writeJSONL(_ rows: [TaskRow], to url: URL, withCompletions: Bool = true) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = Data()
        for row in rows {
            var line = try encoder.encode(row)
            if !withCompletions {
                var object = try JSONSerialization.jsonObject(with: line) as! [String: Any]
                object["completion"] = nil
                line = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            }
            data.append(line)
            data.append(0x0A)
        }
        try data.write(to: url, options: .atomic)
    }
}

/// The final answer of a completion: the text after its last `####` (the GSM8K convention),
/// trimmed; nil when there is none.
public func finalAnswer(_ completion: String) -> String? {
    guard let marker = completion.range(of: "####", options: .backwards) else { return nil }
    let rest = completion[marker.upperBound...]
    let line = rest.split(separator: "\n", omittingEmptySubsequences: false).first ?? ""
    let trimmed = line.trimmingCharacters(in: .whitespaces)
    return trimmed.isEmpty ? nil : trimmed
}

/// The final answer read as an integer (commas allowed, as in "1,234"); nil if it is not one.
public func finalInteger(_ completion: String) -> Int? {
    finalAnswer(completion).flatMap { Int($0.replacingOccurrences(of: ",", with: "")) }
}

/// A number as written in text: commas and a `$` allowed ("$1,234.5"); nil if it is not one.
public func parseNumber(_ s: some StringProtocol) -> Double? {
    Double(s.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: ",", with: "").replacingOccurrences(of: "$", with: ""))
}

/// A number in free text; compiled once (compiling costs ~0.1 ms, more than the match).
private let numberPattern = try! NSRegularExpression(pattern: #"-?\d[\d,]*(\.\d+)?"#)

/// The last number in `text` ("so 45 + 38 = 83." → 83); nil when there is none.
public func lastNumber(_ text: String) -> Double? {
    let ns = text as NSString
    guard let m = numberPattern.matches(in: text, range: NSRange(location: 0, length: ns.length)).last else { return nil }
    return parseNumber(ns.substring(with: m.range))
}
