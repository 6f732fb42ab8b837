import Foundation
import GroveTokenizer

/// A GGUF file's tokenizer (`tokenizer.ggml.*` metadata) as Hugging Face's tokenizer.json and
/// tokenizer_config.json objects, and back. Only byte-level BPE (`tokenizer.ggml.model` "gpt2").
///
/// The metadata: `tokens` (id order, byte-level spelled), `merges` ("a b"), `token_type`
/// (1 normal, 3 control = special added token, 4 user-defined = added token, 5 unused),
/// `pre` (llama.cpp's name of the pre-tokenizer), `bos/eos/padding_token_id`, `add_bos_token`,
/// and `tokenizer.chat_template`.
public enum GGUFTokenizer {
    static let normal: Int32 = 1, control: Int32 = 3, userDefined: Int32 = 4, unused: Int32 = 5

    /// llama.cpp pre-tokenizer names → the regex their Split uses (the rest is ByteLevel).
    static let splitPatterns: [String: String] = [
        "qwen2": PreTokenizer.qwen2Pattern, "deepseek-r1-qwen": PreTokenizer.qwen2Pattern,
        "llama-bpe": PreTokenizer.llama3Pattern, "llama3": PreTokenizer.llama3Pattern, "llama-v3": PreTokenizer.llama3Pattern,
        "smaug-bpe": PreTokenizer.llama3Pattern, "dbrx": PreTokenizer.llama3Pattern, "falcon3": PreTokenizer.llama3Pattern,
    ]

    static func byteLevel(useRegex: Bool) -> [String: Any] {
        ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": useRegex]
    }

    /// The pre-tokenizer (and normalizer) of a llama.cpp pre-tokenizer name.
    static func preTokenizer(_ name: String, file: String) throws -> (pre: [String: Any], normalizer: Any) {
        if let pattern = splitPatterns[name] {
            let split: [String: Any] = ["type": "Split", "pattern": ["Regex": pattern], "behavior": "Isolated", "invert": false]
            let nfc: Any = pattern == PreTokenizer.qwen2Pattern ? ["type": "NFC"] : NSNull()  // Qwen2's tokenizer.json normalizes to NFC
            return (["type": "Sequence", "pretokenizers": [split, byteLevel(useRegex: false)]], nfc)
        }
        switch name {
        case "smollm":  // SmolLM's tokenizer.json: each digit alone, then GPT-2's split
            return (["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true], byteLevel(useRegex: true)]], NSNull())
        case "gpt2", "default":
            return (byteLevel(useRegex: true), NSNull())
        default:
            throw ModelError.unsupported(file: file, key: "tokenizer.ggml.pre", value: name,
                                         supported: (Array(splitPatterns.keys) + ["smollm", "gpt2", "default"]).sorted().joined(separator: ", "))
        }
    }

    /// tokenizer.json and tokenizer_config.json for the file's tokenizer.
    public static func json(_ file: GGUFFile) throws -> (tokenizer: [String: Any], config: [String: Any]) {
        let path = file.path
        let model = file["tokenizer.ggml.model"]?.string ?? "(missing)"
        guard model == "gpt2" else { throw ModelError.unsupported(file: path, key: "tokenizer.ggml.model", value: model, supported: "gpt2 (byte-level BPE)") }
        guard let tokens = file["tokenizer.ggml.tokens"]?.array?.map({ $0.string ?? "" }) else {
            throw ModelError.badConfig(file: path, key: "tokenizer.ggml.tokens", problem: "missing or not an array")
        }
        let types = file["tokenizer.ggml.token_type"]?.array?.map { Int32(clamping: $0.int ?? 1) } ?? []
        var merges: [[String]] = []
        for (i, m) in (file["tokenizer.ggml.merges"]?.array ?? []).enumerated() {
            let parts = (m.string ?? "").split(separator: " ", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ModelError.badConfig(file: path, key: "tokenizer.ggml.merges[\(i)]", problem: "expected \"a b\"") }
            merges.append(parts)
        }
        var vocab: [String: Int] = [:]
        var added: [[String: Any]] = []
        for (id, token) in tokens.enumerated() {
            let type = id < types.count ? types[id] : normal
            if type == unused { continue }
            if vocab[token] == nil { vocab[token] = id }
            if type == control || type == userDefined {
                added.append(["id": id, "content": token, "single_word": false, "lstrip": false, "rstrip": false,
                              "normalized": type == userDefined, "special": type == control])
            }
        }
        let (pre, normalizer) = try preTokenizer(file["tokenizer.ggml.pre"]?.string ?? "default", file: path)
        var post: [String: Any] = byteLevel(useRegex: false)
        let bos = file["tokenizer.ggml.bos_token_id"]?.int
        if file["tokenizer.ggml.add_bos_token"]?.bool == true, let bos, bos >= 0, bos < tokens.count {
            post = ["type": "TemplateProcessing",
                    "single": [["SpecialToken": ["id": tokens[bos], "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
                    "pair": [["SpecialToken": ["id": tokens[bos], "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]],
                             ["SpecialToken": ["id": tokens[bos], "type_id": 1]], ["Sequence": ["id": "B", "type_id": 1]]],
                    "special_tokens": [tokens[bos]: ["id": tokens[bos], "ids": [bos], "tokens": [tokens[bos]]]]]
        }
        let tokenizer: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added,
            "normalizer": normalizer, "pre_tokenizer": pre, "post_processor": post, "decoder": byteLevel(useRegex: true),
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                      "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": merges] as [String: Any],
        ]
        var config: [String: Any] = ["tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": false]
        for (name, key) in [("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"), ("pad_token", "padding_token_id"),
                            ("unk_token", "unknown_token_id")] {
            if let id = file["tokenizer.ggml.\(key)"]?.int, id >= 0, id < tokens.count { config[name] = tokens[id] }
        }
        if let template = file["tokenizer.chat_template"]?.string { config["chat_template"] = template }
        return (tokenizer, config)
    }

    /// The `tokenizer.*` metadata for a Hugging Face folder's tokenizer.json and
    /// tokenizer_config.json (what llama.cpp's converter writes), `vocabSize` tokens long.
    static func metadata(folder: URL, config model: ModelConfig) throws -> [(String, GGUFValue)] {
        func object(_ name: String) throws -> [String: Any]? {
            let url = folder.appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
            guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
                throw ModelError.badConfig(file: url.path, key: "", problem: "not a JSON object")
            }
            return json
        }
        let file = folder.appendingPathComponent("tokenizer.json").path
        guard let json = try object("tokenizer.json") else { throw ModelError.missingFile(path: file, hint: "the GGUF needs the tokenizer") }
        let config = try object("tokenizer_config.json") ?? [:]
        guard let bpe = json["model"] as? [String: Any], (bpe["type"] as? String ?? "BPE") == "BPE",
              let vocab = bpe["vocab"] as? [String: Int] else {
            throw ModelError.unsupported(file: file, key: "model.type", value: "\((json["model"] as? [String: Any])?["type"] ?? "?")", supported: "BPE")
        }
        var tokens = [String?](repeating: nil, count: model.vocabSize)
        var types = [Int32](repeating: normal, count: model.vocabSize)
        func place(_ token: String, _ id: Int, _ type: Int32) throws {
            guard id >= 0, id < model.vocabSize else {
                throw ModelError.badConfig(file: file, key: "model.vocab", problem: "token '\(token)' has id \(id), outside vocab_size \(model.vocabSize)")
            }
            tokens[id] = token
            types[id] = type
        }
        for (token, id) in vocab { try place(token, id, normal) }
        var byContent: [String: Int] = vocab
        for t in (json["added_tokens"] as? [[String: Any]]) ?? [] {
            guard let id = t["id"] as? Int, let content = t["content"] as? String else { continue }
            try place(content, id, t["special"] as? Bool == true ? control : userDefined)
            byContent[content] = id
        }
        for i in tokens.indices where tokens[i] == nil { tokens[i] = "[PAD\(i)]"; types[i] = unused }  // as llama.cpp pads
        var merges: [GGUFValue] = []
        for m in (bpe["merges"] as? [Any]) ?? [] {
            if let pair = m as? [String], pair.count == 2 { merges.append(.string(pair[0] + " " + pair[1])) } else if let s = m as? String { merges.append(.string(s)) }
        }
        var out: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string(try preTokenizerName(json["pre_tokenizer"], file: file))),
            ("tokenizer.ggml.tokens", .array(8, tokens.map { .string($0!) })),
            ("tokenizer.ggml.token_type", .array(5, types.map { .int32($0) })),
            ("tokenizer.ggml.merges", .array(8, merges)),
        ]
        func id(_ key: String) -> Int? {
            let value = config[key]
            return ((value as? String) ?? ((value as? [String: Any])?["content"] as? String)).flatMap { byContent[$0] }
        }
        let special: [(String, Int?)] = [("bos_token_id", model.bosTokenId ?? id("bos_token")), ("eos_token_id", model.eosTokenIds.first ?? id("eos_token")),
                                         ("padding_token_id", model.padTokenId ?? id("pad_token"))]
        for case let (key, value?) in special { if let v = UInt32(exactly: value) { out.append(("tokenizer.ggml.\(key)", .uint32(v))) } }
        let post = json["post_processor"] as? [String: Any]
        let addsBOS = post?["type"] as? String == "TemplateProcessing" && ((post?["single"] as? [[String: Any]])?.first?["SpecialToken"] != nil)
        out.append(("tokenizer.ggml.add_bos_token", .bool(addsBOS)))
        if let template = config["chat_template"] as? String { out.append(("tokenizer.chat_template", .string(template))) }
        return out
    }

    /// llama.cpp's name for a tokenizer.json pre-tokenizer.
    static func preTokenizerName(_ value: Any?, file: String) throws -> String {
        let p = value as? [String: Any]
        let steps = p?["type"] as? String == "Sequence" ? (p?["pretokenizers"] as? [[String: Any]] ?? []) : p.map { [$0] } ?? []
        let kinds = steps.map { $0["type"] as? String ?? "?" }
        if kinds == ["Split", "ByteLevel"], let pattern = (steps[0]["pattern"] as? [String: Any])?["Regex"] as? String {
            if pattern == PreTokenizer.qwen2Pattern { return "qwen2" }
            if pattern == PreTokenizer.llama3Pattern { return "llama-bpe" }
        }
        if kinds == ["Digits", "ByteLevel"], steps[0]["individual_digits"] as? Bool == true { return "smollm" }
        if kinds == ["ByteLevel"] { return "gpt2" }
        throw ModelError.unsupported(file: file, key: "pre_tokenizer", value: kinds.joined(separator: " + "),
                                     supported: "Split(Qwen2 or Llama-3 regex) + ByteLevel, Digits + ByteLevel, ByteLevel")
    }
}
