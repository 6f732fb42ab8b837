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
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer
    /// Ids the post-processor puts around the text when asked to add special tokens (Llama's BOS).
    let prefixIds: [Int]
    let suffixIds: [Int]
    /// Pre-token bytes → ids. Keyed by bytes, not String: String equality is canonical
    /// equivalence, and "é" and "e\u{301}" have different ids.
    private var cache: [[UInt8]: [Int]] = [:]
    private let cacheLock = NSLock()

    /// The chat template, from chat_template.jinja or tokenizer_config.json; nil when the files have none.
    public var chatTemplate: ChatTemplate?
    /// The special tokens a chat template sees as variables (`bos_token`, `eos_token`, ...).
    let templateTokens: [String: String]
    /// The tokenizer.json path, or what made the tokenizer, for messages.
    let sourceDescription: String
    public let eosTokenId: Int?
    public let padTokenId: Int?
    public let bosTokenId: Int?
    /// The files the tokenizer was read from, by name, as they were on disk: saving writes them
    /// back unchanged, so a saved model keeps its normalizer, pre-tokenizer, special tokens and
    /// chat template exactly. Empty for a tokenizer trained by Grove.
    var sourceFiles: [String: Data] = [:]

    /// The files of a tokenizer folder that `save(to:)` copies back.
    static let fileNames = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"]

    /// Reads `dir/tokenizer.json` and, when present, `dir/tokenizer_config.json`,
    /// `dir/special_tokens_map.json` and `dir/chat_template.jinja`.
    public convenience init(directory dir: URL) throws {
        var files: [String: Data] = [:], paths: [String: String] = [:]
        for name in Tokenizer.fileNames {
            paths[name] = dir.appendingPathComponent(name).path
            if let data = FileManager.default.contents(atPath: paths[name]!) { files[name] = data }
        }
        try self.init(files: files, paths: paths)
    }

    /// Reads a tokenizer.json file and, optionally, its tokenizer_config.json.
    public convenience init(tokenizerJSON file: URL, config configFile: URL? = nil) throws {
        var files: [String: Data] = [:]
        let paths = ["tokenizer.json": file.path, "tokenizer_config.json": configFile?.path ?? "tokenizer_config.json"]
        files["tokenizer.json"] = FileManager.default.contents(atPath: file.path)
        if let configFile {
            guard let data = FileManager.default.contents(atPath: configFile.path) else { throw TokenizerError.missingFile(path: configFile.path) }
            files["tokenizer_config.json"] = data
        }
        try self.init(files: files, paths: paths)
    }

    /// Reads the tokenizer files present in `files` (by name, see `fileNames`); `paths` names them in errors.
    private convenience init(files: [String: Data], paths: [String: String]) throws {
        func object(_ name: String) throws -> [String: Any]? {
            guard let data = files[name] else { return nil }
            guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
                throw TokenizerError.malformed(file: paths[name]!, key: "", problem: "not a JSON object")
            }
            return json
        }
        guard let json = try object("tokenizer.json") else { throw TokenizerError.missingFile(path: paths["tokenizer.json"]!) }
        // special_tokens_map.json fills in the special tokens tokenizer_config.json leaves out (older saves keep them only there).
        let config = (try object("tokenizer_config.json") ?? [:]).merging(try object("special_tokens_map.json") ?? [:]) { fromConfig, _ in fromConfig }
        try self.init(json: json, config: config, file: paths["tokenizer.json"]!, configFile: paths["tokenizer_config.json"]!)
        sourceFiles = files
        if let data = files["chat_template.jinja"] {
            chatTemplate = try ChatTemplate(String(decoding: data, as: UTF8.self), origin: paths["chat_template.jinja"]!)
        }
    }

    /// Builds a tokenizer from parsed tokenizer.json and tokenizer_config.json objects;
    /// `path` and `configPath` name them in errors.
    init(json: [String: Any], config: [String: Any], file path: String, configFile configPath: String) throws {
        guard let modelJSON = json["model"] as? [String: Any] else { throw TokenizerError.malformed(file: path, key: "model", problem: "missing") }
        let type = modelJSON["type"] as? String ?? "BPE"
        guard type == "BPE" else { throw TokenizerError.unsupported(file: path, key: "model.type", value: type, supported: "BPE") }
        // SentencePiece-style BPE (Llama-2, Mistral, Gemma) falls back to <0xNN> byte tokens.
        if modelJSON["byte_fallback"] as? Bool == true {
            throw TokenizerError.unsupported(file: path, key: "model.byte_fallback", value: "true", supported: "false (byte-level BPE)")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix", "dropout"] where !(modelJSON[key] is NSNull || modelJSON[key] == nil) {
            throw TokenizerError.unsupported(file: path, key: "model.\(key)", value: "\(modelJSON[key]!)", supported: "null")
        }
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
        normalizer = try Tokenizer.readNormalizer(json["normalizer"], file: path)
        let pre = try Tokenizer.readPreTokenizer(json["pre_tokenizer"], file: path)
        guard let pre, pre.endsWithByteLevel else {
            throw TokenizerError.unsupported(file: path, key: "pre_tokenizer", value: pre.map { "\($0)" } ?? "null",
                                             supported: "a pre-tokenizer whose last step is ByteLevel (byte-level BPE)")
        }
        preTokenizer = pre
        (prefixIds, suffixIds) = try Tokenizer.readPostProcessor(json["post_processor"], file: path)
        try Tokenizer.checkDecoder(json["decoder"], file: path)

        var tokens: [String: String] = [:]
        for key in ["bos_token", "eos_token", "unk_token", "pad_token"] {
            let value = config[key]
            if let name = (value as? String) ?? ((value as? [String: Any])?["content"] as? String) { tokens[key] = name }
        }
        templateTokens = tokens
        func tokenId(_ key: String) -> Int? { tokens[key].flatMap { n in addedTokens.first { $0.content == n }?.id ?? vocab[n] } }
        eosTokenId = tokenId("eos_token")
        padTokenId = tokenId("pad_token")
        bosTokenId = tokenId("bos_token")
        sourceDescription = path
        switch config["chat_template"] {
        case let source as String: chatTemplate = try ChatTemplate(source, origin: configPath)
        case let named as [[String: Any]]:
            // A list of named templates: the "default" one renders plain chats.
            guard let source = named.first(where: { $0["name"] as? String == "default" })?["template"] as? String else {
                throw TokenizerError.malformed(file: configPath, key: "chat_template", problem: "a list of named templates without \"default\"")
            }
            chatTemplate = try ChatTemplate(source, origin: configPath)
        default: chatTemplate = nil
        }
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
        for piece in addedSplitter.split(Array(text.unicodeScalars)) {
            switch piece {
            case .token(let t): ids.append(t.id)
            case .text(let segment):
                for word in preTokenizer.split(normalizer?.apply(segment) ?? segment) { ids.append(contentsOf: encodeWord(word)) }
            }
        }
        return addSpecialTokens ? ids + suffixIds : ids
    }

    /// BPE of one pre-token's UTF-8 bytes, memoized: natural text repeats its words.
    func encodeWord(_ word: [Unicode.Scalar]) -> [Int] {
        var key: [UInt8] = []
        for s in word { key.append(contentsOf: UTF8.encode(s)!) }
        cacheLock.lock()
        let hit = cache[key]
        cacheLock.unlock()
        if let hit { return hit }
        var out: [Int] = []
        model.encode(key, into: &out)
        cacheLock.lock()
        if cache.count > 200_000 { cache.removeAll(keepingCapacity: true) }
        cache[key] = out
        cacheLock.unlock()
        return out
    }

    /// Text of `ids`, as `tokenizers`' ByteLevel decoder makes it: each token, added ones too,
    /// back to bytes through the byte-level table when all its scalars are in it, else as its
    /// UTF-8; then UTF-8 with invalid sequences replaced by U+FFFD.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            if skipSpecialTokens, addedById[id]?.special == true { continue }
            guard let token = idToToken(id) else { continue }
            let mapped = token.unicodeScalars.map { ByteLevel.scalarToByte[$0] }
            if mapped.allSatisfy({ $0 != nil }) { bytes.append(contentsOf: mapped.map { $0! }) } else { bytes.append(contentsOf: Array(token.utf8)) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
