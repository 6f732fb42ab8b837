import Foundation

/// Reading tokenizer.json's `normalizer`, `pre_tokenizer`, `post_processor` and `decoder`.
/// What Grove cannot reproduce exactly is refused, naming the key and the component.
extension Tokenizer {
    static func readNormalizer(_ value: Any?, file: String, key: String = "normalizer") throws -> Normalizer? {
        guard let n = value as? [String: Any] else { return nil }
        let type = n["type"] as? String ?? "?"
        switch type {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Prepend": return .prepend(n["prepend"] as? String ?? "")
        case "Strip": return .strip(left: n["strip_left"] as? Bool ?? true, right: n["strip_right"] as? Bool ?? true)
        case "Replace":
            return .replace(try readPattern(n["pattern"], file: file, key: "\(key).pattern"), n["content"] as? String ?? "")
        case "Sequence":
            let items = (n["normalizers"] as? [Any]) ?? []
            return .sequence(try items.enumerated().compactMap { try readNormalizer($1, file: file, key: "\(key).normalizers[\($0)]") })
        default:
            throw TokenizerError.unsupported(file: file, key: "\(key).type", value: type,
                                             supported: "NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, Sequence")
        }
    }

    /// `{"Regex": "..."}` or `{"String": "..."}`.
    static func readPattern(_ value: Any?, file: String, key: String) throws -> SplitPattern {
        let p = value as? [String: Any]
        if let literal = p?["String"] as? String { return .literal(Array(literal.unicodeScalars)) }
        guard let regex = p?["Regex"] as? String else { throw TokenizerError.malformed(file: file, key: key, problem: "expected {\"Regex\": ...} or {\"String\": ...}") }
        guard RegexMatcher.compiled(regex) != nil else { throw TokenizerError.malformed(file: file, key: key, problem: "regex \(regex) does not compile") }
        return .forRegex(regex)
    }

    static func readPreTokenizer(_ value: Any?, file: String, key: String = "pre_tokenizer") throws -> PreTokenizer? {
        guard let p = value as? [String: Any] else { return nil }
        let type = p["type"] as? String ?? "?"
        switch type {
        case "Sequence":
            let items = (p["pretokenizers"] as? [Any]) ?? []
            return .sequence(try items.enumerated().compactMap { try readPreTokenizer($1, file: file, key: "\(key).pretokenizers[\($0)]") })
        case "Split":
            let name = p["behavior"] as? String ?? "Isolated"
            guard let behavior = SplitBehavior(rawValue: name) else {
                throw TokenizerError.unsupported(file: file, key: "\(key).behavior", value: name,
                                                 supported: "Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous")
            }
            return .split(try readPattern(p["pattern"], file: file, key: "\(key).pattern"), behavior, invert: p["invert"] as? Bool ?? false)
        case "Digits":
            return .digits(individual: p["individual_digits"] as? Bool ?? false)
        case "ByteLevel":
            return .byteLevel(addPrefixSpace: p["add_prefix_space"] as? Bool ?? true, useRegex: p["use_regex"] as? Bool ?? true)
        default:
            // Metaspace (Llama-2, Mistral, Gemma) goes with SentencePiece-style vocabularies of
            // characters and <0xNN> byte tokens, which this byte-level BPE does not read.
            throw TokenizerError.unsupported(file: file, key: "\(key).type", value: type, supported: "ByteLevel, Split, Digits, Sequence")
        }
    }

    /// The ids TemplateProcessing puts around a single sequence (Llama's BOS), possibly inside a Sequence.
    static func readPostProcessor(_ value: Any?, file: String, key: String = "post_processor") throws -> (prefix: [Int], suffix: [Int]) {
        guard let p = value as? [String: Any] else { return ([], []) }
        let type = p["type"] as? String ?? "?"
        switch type {
        case "ByteLevel": return ([], [])  // offsets only
        case "Sequence":
            var out: (prefix: [Int], suffix: [Int]) = ([], [])
            for (i, item) in ((p["processors"] as? [Any]) ?? []).enumerated() {
                let part = try readPostProcessor(item, file: file, key: "\(key).processors[\(i)]")
                out.prefix += part.prefix
                out.suffix += part.suffix
            }
            return out
        case "TemplateProcessing":
            let specials = (p["special_tokens"] as? [String: [String: Any]]) ?? [:]
            var out: (prefix: [Int], suffix: [Int]) = ([], [])
            var seenSequence = false
            for (i, item) in ((p["single"] as? [[String: Any]]) ?? []).enumerated() {
                if item["Sequence"] != nil { seenSequence = true; continue }
                guard let name = (item["SpecialToken"] as? [String: Any])?["id"] as? String, let ids = specials[name]?["ids"] as? [Int] else {
                    throw TokenizerError.malformed(file: file, key: "\(key).single[\(i)]", problem: "a SpecialToken missing from special_tokens")
                }
                if seenSequence { out.suffix += ids } else { out.prefix += ids }
            }
            return out
        default:
            throw TokenizerError.unsupported(file: file, key: "\(key).type", value: type, supported: "ByteLevel, TemplateProcessing, Sequence")
        }
    }

    /// Only byte-level decoding is supported: the ByteLevel decoder, alone or in a Sequence.
    static func checkDecoder(_ value: Any?, file: String, key: String = "decoder") throws {
        guard let d = value as? [String: Any] else { return }
        let type = d["type"] as? String ?? "?"
        switch type {
        case "ByteLevel": return
        case "Sequence":
            for (i, item) in ((d["decoders"] as? [Any]) ?? []).enumerated() { try checkDecoder(item, file: file, key: "\(key).decoders[\(i)]") }
        default:
            // ByteFallback, Metaspace, Replace, Fuse, Strip: SentencePiece-style decoding.
            throw TokenizerError.unsupported(file: file, key: "\(key).type", value: type, supported: "ByteLevel, Sequence")
        }
    }
}
