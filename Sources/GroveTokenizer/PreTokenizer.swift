import Foundation

/// Splits normalized text into pre-tokens before BPE, as `tokenizers`' pre-tokenizers do.
/// Text is a run of Unicode scalars, never Characters: a pre-token may end inside a grapheme
/// cluster ("\r" | "\n", "e" | "\u{301}"), and canonically equivalent texts must stay apart.
public indirect enum PreTokenizer: Equatable {
    /// Each step splits every piece the previous one produced.
    case sequence([PreTokenizer])
    /// `Split(pattern, behavior, invert)`.
    case split(SplitPattern, SplitBehavior, invert: Bool)
    /// Digits as their own pieces: each digit (`individual`) or each run of digits.
    case digits(individual: Bool)
    /// `ByteLevel`: a space before each piece that lacks one (`addPrefixSpace`), then GPT-2's
    /// pattern (`useRegex`). The byte mapping itself happens in `Tokenizer.encodeWord`.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)

    public static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    public static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    /// GPT-2's pattern, used by a ByteLevel pre-tokenizer with use_regex.
    public static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    /// The pieces of `text`, in order, none empty.
    public func split(_ text: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        text.isEmpty ? [] : split(pieces: [text])
    }

    /// The pieces of `text` as strings (for tests and tools).
    public func split(_ text: String) -> [String] {
        split(Array(text.unicodeScalars)).map { String(String.UnicodeScalarView($0)) }
    }

    func split(pieces: [[Unicode.Scalar]]) -> [[Unicode.Scalar]] {
        switch self {
        case .sequence(let steps):
            return steps.reduce(pieces) { $1.split(pieces: $0) }
        case .split(let pattern, let behavior, let invert):
            return pieces.flatMap { behavior.apply(pattern.matches(in: $0), to: $0, invert: invert) }
        case .digits(let individual):
            return pieces.flatMap { piece in
                let matches = piece.indices.filter { isNumber(piece[$0]) }.map { $0..<($0 + 1) }
                return (individual ? SplitBehavior.isolated : .contiguous).apply(matches, to: piece, invert: false)
            }
        case .byteLevel(let addPrefixSpace, let useRegex):
            return pieces.flatMap { piece -> [[Unicode.Scalar]] in
                let spaced = addPrefixSpace && piece.first != " " ? [" "] + piece : piece
                return useRegex ? SplitBehavior.isolated.apply(SplitPattern.gpt2.matches(in: spaced), to: spaced, invert: false) : [spaced]
            }
        }
    }

    /// Whether the last step maps to bytes: only byte-level BPE vocabularies are supported.
    var endsWithByteLevel: Bool {
        switch self {
        case .byteLevel: return true
        case .sequence(let steps): return steps.last?.endsWithByteLevel ?? false
        default: return false
        }
    }
}

/// What a `Split` does with the matches of its pattern (`tokenizers`' SplitDelimiterBehavior).
public enum SplitBehavior: String, Equatable {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"

    /// The pieces of `text` given the (sorted, disjoint, non-empty) match ranges.
    func apply(_ matches: [Range<Int>], to text: [Unicode.Scalar], invert: Bool) -> [[Unicode.Scalar]] {
        // The whole text as alternating (range, isMatch) spans.
        var spans: [(range: Range<Int>, isMatch: Bool)] = []
        var last = 0
        for m in matches {
            if last < m.lowerBound { spans.append((last..<m.lowerBound, invert)) }
            spans.append((m, !invert))
            last = m.upperBound
        }
        if last < text.count { spans.append((last..<text.count, invert)) }

        // The same folds as tokenizers' NormalizedString::split.
        var out: [Range<Int>] = []
        var previousMatch = false
        switch self {
        case .removed: out = spans.filter { !$0.isMatch }.map(\.range)
        case .isolated: out = spans.map(\.range)
        case .mergedWithPrevious:
            for s in spans {
                if s.isMatch && !previousMatch, let prev = out.last { out[out.count - 1] = prev.lowerBound..<s.range.upperBound } else { out.append(s.range) }
                previousMatch = s.isMatch
            }
        case .mergedWithNext:
            for s in spans.reversed() {
                if s.isMatch && !previousMatch, let next = out.last { out[out.count - 1] = s.range.lowerBound..<next.upperBound } else { out.append(s.range) }
                previousMatch = s.isMatch
            }
            out.reverse()
        case .contiguous:
            for s in spans {
                if s.isMatch == previousMatch, let prev = out.last { out[out.count - 1] = prev.lowerBound..<s.range.upperBound } else { out.append(s.range) }
                previousMatch = s.isMatch
            }
        }
        return out.filter { !$0.isEmpty }.map { Array(text[$0]) }
    }
}

/// A Split's pattern: a literal string, or a regex. The Qwen2 and Llama-3 regexes are matched by
/// hand (they run on every dataset line); any other regex goes through ICU.
public enum SplitPattern: Equatable {
    case literal([Unicode.Scalar])
    /// The Qwen2-family regex with digit runs of at most `maxDigits` (Qwen2 1, Llama-3 3).
    case qwen2Family(maxDigits: Int)
    case regex(String)

    static let gpt2 = SplitPattern.regex(PreTokenizer.gpt2Pattern)

    public static func forRegex(_ pattern: String) -> SplitPattern {
        switch pattern {
        case PreTokenizer.qwen2Pattern: return .qwen2Family(maxDigits: 1)
        case PreTokenizer.llama3Pattern: return .qwen2Family(maxDigits: 3)
        default: return .regex(pattern)
        }
    }

    /// The non-overlapping, non-empty matches in `text`, leftmost first, as scalar ranges.
    func matches(in text: [Unicode.Scalar]) -> [Range<Int>] {
        switch self {
        case .literal(let needle):
            guard !needle.isEmpty else { return [] }
            var out: [Range<Int>] = [], i = 0
            while i + needle.count <= text.count {
                if text[i..<(i + needle.count)].elementsEqual(needle) { out.append(i..<(i + needle.count)); i += needle.count } else { i += 1 }
            }
            return out
        case .qwen2Family(let maxDigits): return QwenSplitter(scalars: text, maxDigits: maxDigits).matches()
        case .regex(let pattern): return RegexMatcher.matches(of: pattern, in: text)
        }
    }
}

@inline(__always) func isLetter(_ s: Unicode.Scalar) -> Bool {
    switch s.properties.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
    default: return false
    }
}

@inline(__always) func isNumber(_ s: Unicode.Scalar) -> Bool {
    switch s.properties.generalCategory {
    case .decimalNumber, .letterNumber, .otherNumber: return true
    default: return false
    }
}

/// Oniguruma's `\s`: the Unicode White_Space property.
@inline(__always) func isSpace(_ s: Unicode.Scalar) -> Bool { s.properties.isWhitespace }
@inline(__always) func isNewline(_ s: Unicode.Scalar) -> Bool { s == "\r" || s == "\n" }

/// Leftmost-first matching of the Qwen2-family pattern, alternative by alternative.
struct QwenSplitter {
    let scalars: [Unicode.Scalar]
    let maxDigits: Int

    /// Every scalar is matched by `\s+` or another branch, so the matches tile the text.
    func matches() -> [Range<Int>] {
        var out: [Range<Int>] = []
        var pos = 0
        while pos < scalars.count {
            let end = match(at: pos) ?? (pos + 1)
            out.append(pos..<end)
            pos = end
        }
        return out
    }

    /// End of the match starting at `p`, trying the alternatives in pattern order.
    func match(at p: Int) -> Int? {
        contraction(p) ?? letters(p) ?? digits(p) ?? punctuation(p) ?? newlines(p) ?? trailingSpace(p) ?? spaces(p)
    }

    func at(_ i: Int) -> Unicode.Scalar? { i < scalars.count ? scalars[i] : nil }

    /// (?i:'s|'t|'re|'ve|'m|'ll|'d)
    func contraction(_ p: Int) -> Int? {
        guard at(p) == "'", let a = at(p + 1).map(caseFolded) else { return nil }
        if let b = at(p + 2).map(caseFolded), ["re", "ve", "ll"].contains(a + b) { return p + 3 }
        return ["s", "t", "m", "d"].contains(a) ? p + 2 : nil
    }

    /// Oniguruma's case-insensitive comparison folds case (so "ſ" is an "s").
    func caseFolded(_ s: Unicode.Scalar) -> String { s == "\u{17F}" ? "s" : s.properties.lowercaseMapping }

    /// [^\r\n\p{L}\p{N}]?\p{L}+
    func letters(_ p: Int) -> Int? {
        guard let c = at(p) else { return nil }
        var i = p
        if !isNewline(c) && !isLetter(c) && !isNumber(c), let n = at(p + 1), isLetter(n) { i = p + 1 }
        guard let first = at(i), isLetter(first) else { return nil }
        while let s = at(i), isLetter(s) { i += 1 }
        return i
    }

    /// \p{N}{1,maxDigits}
    func digits(_ p: Int) -> Int? {
        var i = p
        while i - p < maxDigits, let s = at(i), isNumber(s) { i += 1 }
        return i > p ? i : nil
    }

    /// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
    func punctuation(_ p: Int) -> Int? {
        func isOther(_ s: Unicode.Scalar) -> Bool { !isSpace(s) && !isLetter(s) && !isNumber(s) }
        var i = p
        if at(i) == " ", let n = at(i + 1), isOther(n) { i += 1 }
        guard let first = at(i), isOther(first) else { return nil }
        while let s = at(i), isOther(s) { i += 1 }
        while let s = at(i), isNewline(s) { i += 1 }
        return i
    }

    /// \s*[\r\n]+ : the longest whitespace run from p that ends in a newline.
    func newlines(_ p: Int) -> Int? {
        var i = p, lastNewline: Int?
        while let s = at(i), isSpace(s) {
            i += 1
            if isNewline(s) { lastNewline = i }
        }
        return lastNewline
    }

    /// \s+(?!\S) : a whitespace run, given back by one if a non-space follows it.
    func trailingSpace(_ p: Int) -> Int? {
        var i = p
        while let s = at(i), isSpace(s) { i += 1 }
        if i == p { return nil }
        if i == scalars.count { return i }
        return i - 1 > p ? i - 1 : nil
    }

    /// \s+
    func spaces(_ p: Int) -> Int? {
        var i = p
        while let s = at(i), isSpace(s) { i += 1 }
        return i > p ? i : nil
    }
}

/// Regex matches through ICU, for patterns without a hand-written matcher. ICU reports UTF-16
/// offsets; they are mapped back to scalar offsets here (never through `Range(_:in:)`, which
/// cannot express a boundary inside a grapheme cluster).
enum RegexMatcher {
    nonisolated(unsafe) static var cache: [String: NSRegularExpression] = [:]
    static let lock = NSLock()

    /// The compiled pattern, with `\s`/`\S` widened to White_Space as Oniguruma reads them
    /// (ICU's `\s` leaves out U+000B and U+0085). Nil when ICU cannot compile it.
    static func compiled(_ pattern: String) -> NSRegularExpression? {
        lock.lock()
        defer { lock.unlock() }
        if let r = cache[pattern] { return r }
        var icu = "", escaped = false
        for c in pattern {
            if escaped {
                icu += c == "s" ? #"\p{White_Space}"# : c == "S" ? #"\P{White_Space}"# : "\\" + String(c)
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else {
                icu.append(c)
            }
        }
        let regex = try? NSRegularExpression(pattern: icu)
        cache[pattern] = regex
        return regex
    }

    static func matches(of pattern: String, in text: [Unicode.Scalar]) -> [Range<Int>] {
        guard let regex = compiled(pattern) else { return [] }
        let string = String(String.UnicodeScalarView(text))
        var scalarAt: [Int] = []  // scalar index of each UTF-16 offset, and of the end
        scalarAt.reserveCapacity(text.count + 1)
        for (i, s) in text.enumerated() { scalarAt.append(i); if s.value > 0xFFFF { scalarAt.append(i) } }
        scalarAt.append(text.count)
        return regex.matches(in: string, range: NSRange(location: 0, length: scalarAt.count - 1)).compactMap { m in
            let r = scalarAt[m.range.lowerBound]..<scalarAt[m.range.upperBound]
            return r.isEmpty ? nil : r
        }
    }
}
