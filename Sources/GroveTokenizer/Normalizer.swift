import Foundation

/// Rewrites text before pre-tokenization, as `tokenizers`' normalizers do. Works on Unicode
/// scalars: canonically equivalent texts that a normalizer leaves apart stay apart.
public indirect enum Normalizer: Equatable {
    case sequence([Normalizer])
    case nfc, nfd, nfkc, nfkd, lowercase
    /// `content` in front of non-empty text.
    case prepend(String)
    /// Every match of the pattern replaced by `content`.
    case replace(SplitPattern, String)
    /// Whitespace removed from the start and/or end.
    case strip(left: Bool, right: Bool)

    func apply(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        func mapped(_ f: (String) -> String) -> [Unicode.Scalar] { Array(f(String(String.UnicodeScalarView(text))).unicodeScalars) }
        switch self {
        case .sequence(let steps): return steps.reduce(text) { $1.apply($0) }
        case .nfc: return mapped { $0.precomposedStringWithCanonicalMapping }
        case .nfd: return mapped { $0.decomposedStringWithCanonicalMapping }
        case .nfkc: return mapped { $0.precomposedStringWithCompatibilityMapping }
        case .nfkd: return mapped { $0.decomposedStringWithCompatibilityMapping }
        case .lowercase: return mapped { $0.lowercased() }
        case .prepend(let content): return text.isEmpty ? text : Array(content.unicodeScalars) + text
        case .replace(let pattern, let content):
            var out: [Unicode.Scalar] = [], last = 0
            for m in pattern.matches(in: text) {
                out += text[last..<m.lowerBound]
                out += content.unicodeScalars
                last = m.upperBound
            }
            return out + text[last...]
        case .strip(let left, let right):
            var lo = 0, hi = text.count
            if left { while lo < hi, isSpace(text[lo]) { lo += 1 } }
            if right { while hi > lo, isSpace(text[hi - 1]) { hi -= 1 } }
            return Array(text[lo..<hi])
        }
    }
}
