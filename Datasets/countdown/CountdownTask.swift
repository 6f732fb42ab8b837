import Foundation
import GroveTensor

/// Countdown: reach a target from given numbers with + − × ÷, each number used exactly once
/// (TinyZero's rule). Any valid equation is correct, so answers need a checker, not a match.
///
///     Use 19 36 55 7 to make 65.      55+36=91
///                                     91-19=72
///                                     72-7=65
///                                     #### 55+36-19-7
public enum CountdownTask {
    /// `count` distinct problems with 3 or 4 numbers from 1…`maxNumber`, each built from a
    /// random expression whose intermediate results are positive integers.
    public static func generate(count: Int, seed: UInt64, sizes: [Int] = [3, 4], maxNumber: Int = 50,
                                excluding: Set<String> = []) -> [TaskRow] {
        var rng = SeededRandom(seed: seed, streams: [0xC0DE])
        var seen = excluding, rows: [TaskRow] = []
        var attempts = 0
        while rows.count < count && attempts < count * 100 {
            attempts += 1
            let n = sizes[Int(rng.next() % UInt64(sizes.count))]
            let numbers = (0..<n).map { _ in 1 + Int(rng.next() % UInt64(maxNumber)) }
            guard let (steps, expression, target) = solve(numbers, rng: &rng), target > 0, target < 1000 else { continue }
            let prompt = "Use \(numbers.map(String.init).joined(separator: " ")) to make \(target).\n"
            guard seen.insert(prompt).inserted else { continue }
            rows.append(TaskRow(id: "countdown-\(seed)-\(rows.count)", prompt: prompt,
                                completion: (steps + ["#### \(expression)"]).joined(separator: "\n"),
                                answer: "\(target)", level: "n\(n)", numbers: numbers, target: target))
        }
        return rows
    }

    /// Combines the numbers left to right in a random order with random operators, keeping
    /// every intermediate a positive integer; returns the step lines, the expression and its value.
    static func solve(_ numbers: [Int], rng: inout SeededRandom) -> ([String], String, Int)? {
        var order = numbers
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        var value = order[0], expression = "\(order[0])", precedence = 3  // 3: a bare number
        var steps: [String] = []
        for n in order.dropFirst() {
            var options: [Character] = ["+", "*"]
            if value - n > 0 { options.append("-") }
            if value % n == 0 { options.append("/") }
            let op = options[Int(rng.next() % UInt64(options.count))]
            let result: Int
            switch op {
            case "+": result = value + n
            case "-": result = value - n
            case "*": result = value * n
            default: result = value / n
            }
            steps.append("\(value)\(op)\(n)=\(result)")
            // × and ÷ bind tighter than + and −: parenthesise a lower-precedence left side.
            let opPrecedence = (op == "+" || op == "-") ? 1 : 2
            if opPrecedence == 2 && precedence == 1 { expression = "(\(expression))" }
            expression += "\(op)\(n)"
            precedence = min(precedence, opPrecedence)
            value = result
        }
        return (steps, expression, value)
    }

    /// True when the final answer is an expression over exactly the given numbers (each once)
    /// whose exact rational value is `target`. Accepts + - * / × x ÷ and parentheses.
    public static func isCorrect(completion: String, numbers: [Int], target: Int) -> Bool {
        guard let text = finalAnswer(completion) else { return false }
        var parser = ExpressionParser(text)
        guard let value = parser.parse(), parser.used.sorted() == numbers.sorted() else { return false }
        return value == Rational(target)
    }
}

/// An exact fraction, so that division is checked without rounding.
struct Rational: Equatable {
    let num: Int, den: Int

    init(_ n: Int, _ d: Int = 1) {
        func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? abs(a) : gcd(b, a % b) }
        let g = max(gcd(n, d), 1), sign = d < 0 ? -1 : 1
        num = sign * n / g; den = sign * d / g
    }

    static func + (a: Rational, b: Rational) -> Rational? { combine(a.num, b.den, b.num, a.den, a.den, b.den, +) }
    static func - (a: Rational, b: Rational) -> Rational? { combine(a.num, b.den, b.num, a.den, a.den, b.den, -) }
    static func * (a: Rational, b: Rational) -> Rational? {
        let (n, o1) = a.num.multipliedReportingOverflow(by: b.num), (d, o2) = a.den.multipliedReportingOverflow(by: b.den)
        return o1 || o2 ? nil : Rational(n, d)
    }
    static func / (a: Rational, b: Rational) -> Rational? {
        guard b.num != 0 else { return nil }
        return a * Rational(b.den, b.num)
    }

    /// (p·q' ± q·p') / (d·d'), refusing overflow (arbitrary input may hold huge numbers).
    private static func combine(_ a: Int, _ bd: Int, _ b: Int, _ ad: Int, _ d1: Int, _ d2: Int, _ op: (Int, Int) -> Int) -> Rational? {
        let (x, o1) = a.multipliedReportingOverflow(by: bd), (y, o2) = b.multipliedReportingOverflow(by: ad)
        let (d, o3) = d1.multipliedReportingOverflow(by: d2)
        guard !o1, !o2, !o3, abs(x) < Int.max / 2, abs(y) < Int.max / 2 else { return nil }
        return Rational(op(x, y), d)
    }
}

/// Recursive descent over `expr := term (('+'|'-') term)*`, `term := factor (('*'|'/') factor)*`,
/// `factor := integer | '(' expr ')'`. Any other character, or anything left over, fails.
struct ExpressionParser {
    let chars: [Character]
    var pos = 0
    var used: [Int] = []
    var depth = 0

    init(_ text: String) { chars = Array(text.filter { !$0.isWhitespace }) }

    mutating func parse() -> Rational? {
        guard let v = expression(), pos == chars.count else { return nil }
        return v
    }

    mutating func expression() -> Rational? {
        guard var v = term() else { return nil }
        while pos < chars.count, chars[pos] == "+" || chars[pos] == "-" {
            let op = chars[pos]; pos += 1
            guard let r = term(), let next = op == "+" ? v + r : v - r else { return nil }
            v = next
        }
        return v
    }

    mutating func term() -> Rational? {
        guard var v = factor() else { return nil }
        while pos < chars.count, "*/×x÷".contains(chars[pos]) {
            let op = chars[pos]; pos += 1
            guard let r = factor(), let next = (op == "/" || op == "÷") ? v / r : v * r else { return nil }
            v = next
        }
        return v
    }

    mutating func factor() -> Rational? {
        guard pos < chars.count else { return nil }
        if chars[pos] == "(" {
            depth += 1
            guard depth < 64 else { return nil }
            pos += 1
            guard let v = expression(), pos < chars.count, chars[pos] == ")" else { return nil }
            pos += 1; depth -= 1
            return v
        }
        let start = pos
        while pos < chars.count, chars[pos].isASCII, chars[pos].isNumber, pos - start < 9 { pos += 1 }
        guard pos > start, let n = Int(String(chars[start..<pos])) else { return nil }
        used.append(n)
        return Rational(n)
    }
}
