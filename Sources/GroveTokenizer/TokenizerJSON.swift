import Foundation

extension Tokenizer {
    /// A tokenizer from parts (the trainer's output); same structure as Qwen2's tokenizer.json.
    convenience init(vocab: [String: Int], merges: [(String, String)], added: [AddedToken], eos: Int?, pad: Int?,
                     chatTemplate: ChatTemplate?) throws {
        try self.init(json: Tokenizer.tokenizerJSON(vocab: vocab, merges: merges, added: added),
                      config: Tokenizer.configJSON(added: added, eos: eos, pad: pad, chatTemplate: chatTemplate),
                      file: "<trained tokenizer>", configFile: "<trained tokenizer>")
    }

    static func tokenizerJSON(vocab: [String: Int], merges: [(String, String)], added: [AddedToken]) -> [String: Any] {
        [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(),
            "added_tokens": added.map { ["id": $0.id, "content": $0.content, "single_word": false, "lstrip": $0.lstrip,
                                         "rstrip": $0.rstrip, "normalized": false, "special": $0.special] as [String: Any] },
            "normalizer": ["type": "NFC"],
            "pre_tokenizer": ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": PreTokenizer.qwen2Pattern], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false],
            ]],
            "post_processor": ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false],
            "decoder": ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false],
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                      "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": merges.map { [$0.0, $0.1] }] as [String: Any],
        ]
    }

    static func configJSON(added: [AddedToken], eos: Int?, pad: Int?, chatTemplate: ChatTemplate?) -> [String: Any] {
        var config: [String: Any] = ["tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": false,
                                     "model_max_length": 4096]
        if let eos, let t = added.first(where: { $0.id == eos }) { config["eos_token"] = t.content }
        if let pad, let t = added.first(where: { $0.id == pad }) { config["pad_token"] = t.content }
        if let chatTemplate { config["chat_template"] = chatTemplate.source }
        return config
    }

    /// Writes the tokenizer into `dir`: the files it was read from, byte for byte, or, for a
    /// tokenizer trained by Grove, a fresh tokenizer.json and tokenizer_config.json.
    public func save(to dir: URL) throws {
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            if !sourceFiles.isEmpty {
                for (name, data) in sourceFiles { try data.write(to: dir.appendingPathComponent(name), options: .atomic) }
                return
            }
            let merges = model.orderedMerges
            let json = Tokenizer.tokenizerJSON(vocab: model.vocab, merges: merges, added: added)
            let config = Tokenizer.configJSON(added: added, eos: eosTokenId, pad: padTokenId, chatTemplate: chatTemplate)
            for (name, object) in [("tokenizer.json", json), ("tokenizer_config.json", config)] {
                let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                try data.write(to: dir.appendingPathComponent(name), options: .atomic)
            }
        } catch {
            throw TokenizerError.unwritable(path: dir.path, reason: "\(error)")
        }
    }
}
