import Foundation

/// A byte-level BPE tokenizer read from Hugging Face's `tokenizer.json` (Qwen2, Llama-3,
/// GPT-2 style), encoding and decoding exactly as the `tokenizers` library does.
///
/// ```swift
/// let tok = try Tokenizer(directory: URL(fileURLWithPath: "model_dir"))
/// let ids = tok.encode("What is 23+45?")      // [270, 258, 220, 17, 18, 10, 19, 20, 30]
/// let text = tok.decode(ids)
/// ```
public final class Tokenizer {
    let model: BPEModel
    let added: [AddedToken]
    let addedSplitter: AddedTokenSplitter
    let addedById: [Int: AddedToken]
    let normalizeNFC: Bool
    let preTokenizer: PreTokenizer
    /// Ids the post-processor puts in front when asked to add special tokens (Llama's BOS).
    let prefixIds: [Int]
    private var cache: [String: [Int]] = [:]  // String keys: a Substring would pin its whole source text
    private let cacheLock = NSLock()

    /// The chat template, from tokenizer_config.json or set by name.
    public var chatTemplate: ChatTemplate?
    public let eosTokenId: Int?
    public let padTokenId: Int?
    public let bosTokenId: Int?

    /// Reads `dir/tokenizer.json` and, when present, `dir/tokenizer_config.json`.
    public convenience init(directory dir: URL) throws {
        let config = dir.appendingPathComponent("tokenizer_config.json")
        try self.init(tokenizerJSON: dir.appendingPathComponent("tokenizer.json"),
                      config: FileManager.default.fileExists(atPath: config.path) ? config : nil)
    }

    /// Reads a tokenizer.json file and, optionally, its tokenizer_config.json.
    public convenience init(tokenizerJSON file: URL, config configFile: URL? = nil) throws {
        func object(_ url: URL) throws -> [String: Any] {
            guard let data = FileManager.default.contents(atPath: url.path) else { throw TokenizerError.missingFile(path: url.path) }
            guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
                throw TokenizerError.malformed(file: url.path, key: "", problem: "not a JSON object")
            }
            return json
        }
        try self.init(json: try object(file), config: try configFile.map(object) ?? [:], file: file.path)
    }

    /// Builds a tokenizer from parsed tokenizer.json and tokenizer_config.json objects;
    /// `path` names the source in errors.
    init(json: [String: Any], config: [String: Any], file path: String) throws {
        guard let modelJSON = json["model"] as? [String: Any] else { throw TokenizerError.malformed(file: path, key: "model", problem: "missing") }
        let type = modelJSON["type"] as? String ?? "BPE"
        guard type == "BPE" else { throw TokenizerError.unsupported(file: path, key: "model.type", value: type, supported: "BPE") }
        guard let vocab = modelJSON["vocab"] as? [String: Int] else {
            throw TokenizerError.malformed(file: path, key: "model.vocab", problem: "missing or not a token → id mapping")
        }
        // tokenizers rejects a BPE model without merges; [] is fine for a vocabulary of single characters.
        guard let mergesJSON = modelJSON["merges"] as? [Any] else {
            throw TokenizerError.malformed(file: path, key: "model.merges", problem: "missing or not a list (tokenizers requires it; [] when the vocabulary is single bytes)")
        }
        var merges: [(String, String)] = []
        for (i, m) in mergesJSON.enumerated() {
            if let pair = m as? [String], pair.count == 2 { merges.append((pair[0], pair[1])); continue }
            if let s = m as? String, let space = s.firstIndex(of: " ") {
                merges.append((String(s[..<space]), String(s[s.index(after: space)...]))); continue
            }
            throw TokenizerError.malformed(file: path, key: "model.merges[\(i)]", problem: "expected [\"a\", \"b\"] or \"a b\"")
        }
        let ignoreMerges = modelJSON["ignore_merges"] as? Bool ?? false
        if merges.isEmpty && !ignoreMerges, let token = vocab.keys.filter({ $0.unicodeScalars.count > 1 }).min() {
            throw TokenizerError.malformed(file: path, key: "model.merges", problem: "is empty, so multi-character tokens of model.vocab such as '\(token)' can never be produced")
        }

        var addedTokens: [AddedToken] = []
        for (i, item) in ((json["added_tokens"] as? [Any]) ?? []).enumerated() {
            guard let t = item as? [String: Any], let id = t["id"] as? Int, let content = t["content"] as? String else {
                throw TokenizerError.malformed(file: path, key: "added_tokens[\(i)]", problem: "needs an integer id and a string content")
            }
            // An empty token matches before every character without consuming any: encoding would never end.
            guard !content.isEmpty else { throw TokenizerError.malformed(file: path, key: "added_tokens[\(i)]", problem: "content is empty") }
            addedTokens.append(AddedToken(id: id, content: content, special: t["special"] as? Bool ?? false,
                                          lstrip: t["lstrip"] as? Bool ?? false, rstrip: t["rstrip"] as? Bool ?? false))
        }
        try Tokenizer.checkIds(vocab: vocab, added: addedTokens, file: path)
        model = try BPEModel(vocab: vocab, merges: merges, ignoreMerges: ignoreMerges, file: path)
        added = addedTokens
        addedSplitter = AddedTokenSplitter(addedTokens)
        addedById = Dictionary(added.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        normalizeNFC = try Tokenizer.readNormalizer(json["normalizer"], file: path)
        preTokenizer = try Tokenizer.readPreTokenizer(json["pre_tokenizer"], file: path)

        // TemplateProcessing (Llama) puts special tokens before the text; ByteLevel adds none.
        var prefix: [Int] = []
        if let post = json["post_processor"] as? [String: Any], post["type"] as? String == "TemplateProcessing",
           let single = post["single"] as? [[String: Any]] {
            for item in single {
                guard let special = item["SpecialToken"] as? [String: Any], let name = special["id"] as? String else { break }
                if let id = addedTokens.first(where: { $0.content == name })?.id ?? vocab[name] { prefix.append(id) }
            }
        }
        prefixIds = prefix

        func tokenId(_ key: String) -> Int? {
            let value = config[key]
            let name = (value as? String) ?? ((value as? [String: Any])?["content"] as? String)
            return name.flatMap { n in addedTokens.first { $0.content == n }?.id ?? vocab[n] }
        }
        eosTokenId = tokenId("eos_token")
        padTokenId = tokenId("pad_token")
        bosTokenId = tokenId("bos_token")
        chatTemplate = (config["chat_template"] as? String).flatMap(ChatTemplate.recognize)
    }

    /// Ids index the id → token table: each must be unique and below the number of tokens (and 2^24),
    /// so that a corrupt id is an error rather than a crash or a table of billions of entries.
    static func checkIds(vocab: [String: Int], added: [AddedToken], file: String) throws {
        let limit = min(1 << 24, vocab.count + added.count)
        var tokenOfId: [Int: String] = [:]
        for (token, id) in vocab {
            guard id >= 0 && id < limit else {
                throw TokenizerError.malformed(file: file, key: "model.vocab", problem: "token '\(token)' has id \(id), outside 0..<\(limit) (the number of tokens)")
            }
            if let other = tokenOfId.updateValue(token, forKey: id) {
                let pair = [other, token].sorted()
                throw TokenizerError.malformed(file: file, key: "model.vocab", problem: "tokens '\(pair[0])' and '\(pair[1])' both have id \(id)")
            }
        }
        var addedIds: [Int: String] = [:]
        for (i, t) in added.enumerated() {
            guard t.id >= 0 && t.id < limit else {
                throw TokenizerError.malformed(file: file, key: "added_tokens[\(i)]", problem: "id \(t.id) is outside 0..<\(limit) (the number of tokens)")
            }
            // An added token may restate a vocabulary entry (GPT-2's <|endoftext|>), not another added token.
            if let other = addedIds.updateValue(t.content, forKey: t.id) {
                throw TokenizerError.malformed(file: file, key: "added_tokens[\(i)]", problem: "id \(t.id) is already the added token '\(other)'")
            }
        }
    }

    static func readNormalizer(_ value: Any?, file: String) throws -> Bool {
        guard let n = value as? [String: Any] else { return false }
        switch n["type"] as? String {
        case "NFC": return true
        case "Sequence":
            var nfc = false
            for item in (n["normalizers"] as? [Any]) ?? [] { nfc = try readNormalizer(item, file: file) || nfc }
            return nfc
        case let other:
            throw TokenizerError.unsupported(file: file, key: "normalizer.type", value: other ?? "?", supported: "NFC, Sequence, null")
        }
    }

    static func readPreTokenizer(_ value: Any?, file: String) throws -> PreTokenizer {
        guard let p = value as? [String: Any] else { return .none }
        switch p["type"] as? String {
        case "Sequence":
            // A Split followed by a ByteLevel without its own regex: the Split decides the pieces.
            let parts = try ((p["pretokenizers"] as? [Any]) ?? []).map { try readPreTokenizer($0, file: file) }
            let splitting = parts.filter { $0 != .none }
            guard splitting.count <= 1 else {
                throw TokenizerError.unsupported(file: file, key: "pre_tokenizer.pretokenizers", value: "\(splitting.count) splitting steps", supported: "one Split or ByteLevel(use_regex)")
            }
            return splitting.first ?? .none
        case "Split":
            guard let pattern = (p["pattern"] as? [String: Any])?["Regex"] as? String, (p["behavior"] as? String ?? "Isolated") == "Isolated",
                  (p["invert"] as? Bool ?? false) == false else {
                throw TokenizerError.unsupported(file: file, key: "pre_tokenizer.Split", value: "\(p)", supported: "Regex pattern, behavior Isolated, invert false")
            }
            let splitter = PreTokenizer.forPattern(pattern)
            if case .regex = splitter, (try? NSRegularExpression(pattern: pattern)) == nil {
                throw TokenizerError.malformed(file: file, key: "pre_tokenizer.pattern.Regex", problem: "'\(pattern)' is not a valid regular expression")
            }
            return splitter
        case "ByteLevel":
            if p["add_prefix_space"] as? Bool == true {
                throw TokenizerError.unsupported(file: file, key: "pre_tokenizer.add_prefix_space", value: "true", supported: "false")
            }
            return (p["use_regex"] as? Bool ?? true) ? .regex(PreTokenizer.gpt2Pattern) : .none
        case let other:
            throw TokenizerError.unsupported(file: file, key: "pre_tokenizer.type", value: other ?? "?", supported: "ByteLevel, Split, Sequence")
        }
    }

    /// Size of the id space (BPE vocabulary and added tokens).
    public var vocabSize: Int { max(model.idToToken.count, (added.map(\.id).max() ?? -1) + 1) }

    /// Ids of the special added tokens.
    public var specialTokenIds: Set<Int> { Set(added.filter(\.special).map(\.id)) }

    /// The token string of an id (byte-level characters for BPE tokens), nil if unknown.
    public func idToToken(_ id: Int) -> String? {
        if let a = addedById[id] { return a.content }
        return id >= 0 && id < model.idToToken.count && !model.idToToken[id].isEmpty ? model.idToToken[id] : nil
    }

    /// The id of a token string, nil if unknown.
    public func tokenToId(_ token: String) -> Int? { added.first { $0.content == token }?.id ?? model.vocab[token] }

    /// Token ids of `text`. `addSpecialTokens` applies the post-processor (a BOS for Llama).
    public func encode(_ text: String, addSpecialTokens: Bool = false) -> [Int] {
        var ids = addSpecialTokens ? prefixIds : []
        for piece in addedSplitter.split(text) {
            switch piece {
            case .token(let t): ids.append(t.id)
            case .text(let segment):
                let normalized = normalizeNFC ? Substring(String(segment).precomposedStringWithCanonicalMapping) : segment
                for word in preTokenizer.split(normalized) { ids.append(contentsOf: encodeWord(word)) }
            }
        }
        return ids
    }

    /// BPE of one pre-token, memoized: natural text repeats its words.
    func encodeWord(_ word: Substring) -> [Int] {
        cacheLock.lock()
        let key = String(word)
        let hit = cache[key]
        cacheLock.unlock()
        if let hit { return hit }
        var out: [Int] = []
        model.encode(ByteLevel.encode(word), into: &out)
        cacheLock.lock()
        if cache.count > 200_000 { cache.removeAll(keepingCapacity: true) }
        cache[key] = out
        cacheLock.unlock()
        return out
    }

    /// Text of `ids`: BPE tokens back to bytes through the byte-level table, added tokens as
    /// they are, then UTF-8 with invalid sequences replaced by U+FFFD (as `tokenizers` does).
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            if let a = addedById[id] {
                if skipSpecialTokens && a.special { continue }
                bytes.append(contentsOf: Array(a.content.utf8))
                continue
            }
            guard let token = idToToken(id) else { continue }
            let mapped = token.map { ByteLevel.charToByte[$0] }
            if mapped.allSatisfy({ $0 != nil }) { bytes.append(contentsOf: mapped.map { $0! }) } else { bytes.append(contentsOf: Array(token.utf8)) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
