import Foundation

/// Splits normalized text into pre-tokens before BPE: `tokenizers`' `Split(regex, Isolated)`
/// (the matches, and the text between them, each become a piece).
///
/// The Qwen2 and Llama-3 patterns are matched by hand over Unicode scalars (they run on every
/// dataset line, and ICU is slow); any other pattern goes through NSRegularExpression.
public enum PreTokenizer: Equatable {
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    /// with maxDigits 1 (Qwen2) or 3 (Llama-3).
    case qwen2Family(maxDigits: Int)
    /// Any other split pattern.
    case regex(String)
    /// No split: the whole text is one piece.
    case none

    public static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    public static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    /// GPT-2's pattern, used by a ByteLevel pre-tokenizer with use_regex.
    public static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    /// The matcher for a pattern string from tokenizer.json.
    public static func forPattern(_ pattern: String) -> PreTokenizer {
        switch pattern {
        case qwen2Pattern: return .qwen2Family(maxDigits: 1)
        case llama3Pattern: return .qwen2Family(maxDigits: 3)
        default: return .regex(pattern)
        }
    }

    /// The pieces of `text`, in order; together they are the whole text.
    public func split(_ text: Substring) -> [Substring] {
        switch self {
        case .none: return text.isEmpty ? [] : [text]
        case .qwen2Family(let maxDigits): return QwenSplitter(text: text, maxDigits: maxDigits).pieces()
        case .regex(let pattern): return RegexSplitter.split(text, pattern: pattern)
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

@inline(__always) func isSpace(_ s: Unicode.Scalar) -> Bool { s.properties.isWhitespace }
@inline(__always) func isNewline(_ s: Unicode.Scalar) -> Bool { s == "\r" || s == "\n" }

/// Leftmost-first matching of the Qwen2-family pattern, alternative by alternative.
struct QwenSplitter {
    let scalars: [Unicode.Scalar]
    let indices: [String.Index]  // String index of each scalar, plus the end
    let text: Substring
    let maxDigits: Int

    init(text: Substring, maxDigits: Int) {
        self.text = text
        self.maxDigits = maxDigits
        var s: [Unicode.Scalar] = [], idx: [String.Index] = []
        var i = text.unicodeScalars.startIndex
        while i < text.unicodeScalars.endIndex {
            s.append(text.unicodeScalars[i]); idx.append(i)
            i = text.unicodeScalars.index(after: i)
        }
        idx.append(text.endIndex)
        scalars = s
        indices = idx
    }

    func pieces() -> [Substring] {
        var out: [Substring] = []
        var pos = 0
        while pos < scalars.count {
            let end = match(at: pos) ?? (pos + 1)  // every scalar is matched by \s+ or another branch
            out.append(text[indices[pos]..<indices[end]])
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
        guard at(p) == "'", let a = at(p + 1).map({ Character($0).lowercased() }) else { return nil }
        if let b = at(p + 2).map({ Character($0).lowercased() }), ["re", "ve", "ll"].contains(a + b) { return p + 3 }
        return ["s", "t", "m", "d"].contains(a) ? p + 2 : nil
    }

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

/// Split(pattern, Isolated) through ICU, for patterns without a hand-written matcher.
enum RegexSplitter {
    nonisolated(unsafe) static var cache: [String: NSRegularExpression] = [:]
    static let lock = NSLock()

    static func split(_ text: Substring, pattern: String) -> [Substring] {
        lock.lock()
        let regex = cache[pattern] ?? (try? NSRegularExpression(pattern: pattern))
        cache[pattern] = regex
        lock.unlock()
        guard let regex else { return [text] }
        let s = String(text)
        var out: [Substring] = []
        var last = s.startIndex
        for m in regex.matches(in: s, range: NSRange(s.startIndex..., in: s)) {
            guard let r = Range(m.range, in: s), !r.isEmpty else { continue }
            if last < r.lowerBound { out.append(s[last..<r.lowerBound]) }
            out.append(s[r])
            last = r.upperBound
        }
        if last < s.endIndex { out.append(s[last...]) }
        return out
    }
}
