import Foundation
import GroveTensor

/// Multi-digit arithmetic with worked steps, column by column from the right, so a small
/// model learns the algorithm rather than a lookup table. Each step line carries the digit
/// written and the carry/borrow, and ends with the answer built so far, so the final
/// `#### N` line is a copy of the last one:
///
///     347+285=            7+5+0=12 c1 2
///                         4+8+1=13 c1 32
///                         3+2+1=06 c0 632
///                         #### 632
public enum ArithmeticTask {
    /// A kind of problem.
    public enum Level: Equatable, Hashable {
        /// a + b, both with `digits` digits.
        case add(digits: Int)
        /// a − b, both with `digits` digits; negative results are written as −(b − a).
        case sub(digits: Int)
        /// a × d, a with `digits` digits, d one digit.
        case mul(digits: Int)

        /// The level's name in data files: "add3", "sub2", "mul3".
        public var name: String {
            switch self {
            case .add(let d): return "add\(d)"
            case .sub(let d): return "sub\(d)"
            case .mul(let d): return "mul\(d)"
            }
        }

        /// Parses a name such as "add3".
        public init?(name: String) {
            guard let d = Int(name.dropFirst(3)), (1...12).contains(d) else { return nil }
            switch name.prefix(3) {
            case "add": self = .add(digits: d)
            case "sub": self = .sub(digits: d)
            case "mul": self = .mul(digits: d)
            default: return nil
            }
        }
    }

    /// The quickstart's mix: 2–3 digit problems a tiny model masters in minutes, and 4–5
    /// digit ones it learns more slowly (the headroom GRPO works on).
    public static let defaultMix: [(Level, Double)] = [
        (.add(digits: 2), 1), (.sub(digits: 2), 1), (.mul(digits: 2), 1),
        (.add(digits: 3), 1), (.sub(digits: 3), 1), (.mul(digits: 3), 1),
        (.add(digits: 4), 1), (.sub(digits: 4), 1), (.add(digits: 5), 1),
    ]

    /// `count` distinct problems drawn from `mix` with a seeded generator, skipping any whose
    /// prompt is in `excluding` (so a held-out set never repeats a training problem).
    public static func generate(count: Int, seed: UInt64, mix: [(Level, Double)] = defaultMix,
                                excluding: Set<String> = []) -> [TaskRow] {
        var rng = SeededRandom(seed: seed, streams: [0xA217])
        let total = mix.reduce(0) { $0 + $1.1 }
        var seen = excluding, rows: [TaskRow] = []
        var attempts = 0
        while rows.count < count && attempts < count * 100 {
            attempts += 1
            var pick = Double(rng.uniform()) * total, level = mix[0].0
            for (l, w) in mix { if pick < w { level = l; break }; pick -= w }
            let row = problem(level, rng: &rng, id: "arith-\(seed)-\(rows.count)")
            if seen.insert(row.prompt).inserted { rows.append(row) }
        }
        return rows
    }

    static func number(digits: Int, rng: inout SeededRandom) -> Int {
        let low = digits == 1 ? 0 : Int(pow(10.0, Double(digits - 1)))
        let high = Int(pow(10.0, Double(digits)))
        return low + Int(rng.next() % UInt64(high - low))
    }

    /// One problem of `level` with its worked solution.
    public static func problem(_ level: Level, rng: inout SeededRandom, id: String) -> TaskRow {
        switch level {
        case .add(let d):
            let a = number(digits: d, rng: &rng), b = number(digits: d, rng: &rng)
            return row(id, level, "\(a)+\(b)=", addition(a, b), a + b)
        case .sub(let d):
            let a = number(digits: d, rng: &rng), b = number(digits: d, rng: &rng)
            return row(id, level, "\(a)-\(b)=", subtraction(a, b), a - b)
        case .mul(let d):
            let a = number(digits: d, rng: &rng), b = 2 + Int(rng.next() % 8)
            return row(id, level, "\(a)*\(b)=", multiplication(a, b), a * b)
        }
    }

    static func row(_ id: String, _ level: Level, _ prompt: String, _ steps: [String], _ answer: Int) -> TaskRow {
        TaskRow(id: id, prompt: prompt, completion: (steps + ["#### \(answer)"]).joined(separator: "\n"),
                answer: "\(answer)", level: level.name)
    }

    /// Column results are always written with two digits ("08"), so every step line of a
    /// problem has the same length and each operand digit sits at a fixed distance behind it:
    /// a small model then finds the digits it needs by position instead of by counting.
    static func twoDigits(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    static func digits(_ n: Int) -> [Int] { String(n).compactMap(\.wholeNumberValue).reversed() }

    /// Column i: a_i + b_i + carry = s, write s mod 10, carry s / 10.
    static func addition(_ a: Int, _ b: Int) -> [String] {
        let x = digits(a), y = digits(b)
        var lines: [String] = [], carry = 0, written = ""
        for i in 0..<max(x.count, y.count) {
            let p = i < x.count ? x[i] : 0, q = i < y.count ? y[i] : 0, s = p + q + carry
            written = "\(s % 10)" + written
            lines.append("\(p)+\(q)+\(carry)=\(twoDigits(s)) c\(s / 10) \(written)")
            carry = s / 10
        }
        if carry > 0 { written = "\(carry)" + written; lines.append("c\(carry) \(written)") }
        return lines
    }

    /// Column i: a_i − b_i − borrow; add 10 and borrow when negative. a < b is solved as −(b − a).
    static func subtraction(_ a: Int, _ b: Int) -> [String] {
        if a < b { return ["swap \(b)-\(a)"] + subtraction(b, a) + ["negate"] }
        let x = digits(a), y = digits(b)
        var lines: [String] = [], borrow = 0, written = ""
        for i in 0..<x.count {
            let p = x[i], q = i < y.count ? y[i] : 0
            var d = p - q - borrow
            let next = d < 0 ? 1 : 0
            if d < 0 { d += 10 }
            written = "\(d)" + written
            lines.append("\(p)-\(q)-\(borrow)=\(d) b\(next) \(written)")
            borrow = next
        }
        let stripped = String(written.drop { $0 == "0" })
        if stripped != written { lines.append("= \(stripped.isEmpty ? "0" : stripped)") }
        return lines
    }

    /// Column i: a_i × d + carry = s, write s mod 10, carry s / 10.
    static func multiplication(_ a: Int, _ m: Int) -> [String] {
        let x = digits(a)
        var lines: [String] = [], carry = 0, written = ""
        for i in 0..<x.count {
            let s = x[i] * m + carry
            written = "\(s % 10)" + written
            lines.append("\(x[i])*\(m)+\(carry)=\(twoDigits(s)) c\(s / 10) \(written)")
            carry = s / 10
        }
        if carry > 0 { written = "\(carry)" + written; lines.append("c\(carry) \(written)") }
        return lines
    }

    /// True when the completion's final answer (`#### N`) equals `answer`.
    public static func isCorrect(completion: String, answer: String) -> Bool {
        guard let expected = Int(answer), let got = finalInteger(completion) else { return false }
        return got == expected
    }
}
