import Foundation

/// The architecture of a Llama- or Qwen2-family model, read from and written to Hugging
/// Face's `config.json` (Swift names are the camelCase of its keys).
public struct ModelConfig: Equatable {
    /// The model families Grove runs.
    public enum ModelType: String, CaseIterable { case llama, qwen2 }

    public var modelType: ModelType
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var headDim: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var maxPositionEmbeddings: Int
    public var tieWordEmbeddings: Bool
    /// Llama's `attention_bias` (q, k, v and o). Qwen2 always has q/k/v biases and no o bias.
    public var attentionBias: Bool
    public var initializerRange: Double
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]
    public var padTokenId: Int?

    public var architectures: [String] { [modelType == .llama ? "LlamaForCausalLM" : "Qwen2ForCausalLM"] }

    public init(modelType: ModelType = .qwen2, vocabSize: Int, hiddenSize: Int, intermediateSize: Int,
                numHiddenLayers: Int, numAttentionHeads: Int, numKeyValueHeads: Int? = nil, headDim: Int? = nil,
                rmsNormEps: Double = 1e-6, ropeTheta: Double = 10_000, maxPositionEmbeddings: Int = 2048,
                tieWordEmbeddings: Bool = true, attentionBias: Bool = false, initializerRange: Double = 0.02,
                bosTokenId: Int? = nil, eosTokenIds: [Int] = [], padTokenId: Int? = nil) {
        self.modelType = modelType; self.vocabSize = vocabSize; self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize; self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads; self.numKeyValueHeads = numKeyValueHeads ?? numAttentionHeads
        self.headDim = headDim ?? hiddenSize / max(numAttentionHeads, 1)  // validate names a zero head count
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta; self.maxPositionEmbeddings = maxPositionEmbeddings
        self.tieWordEmbeddings = tieWordEmbeddings; self.attentionBias = attentionBias
        self.initializerRange = initializerRange; self.bosTokenId = bosTokenId; self.eosTokenIds = eosTokenIds
        self.padTokenId = padTokenId
    }

    /// Reads `dir/config.json`.
    public static func load(from dir: URL) throws -> ModelConfig {
        let file = dir.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: dir.path) else { throw ModelError.missingFile(path: dir.path, hint: "model folder") }
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw ModelError.missingFile(path: file.path, hint: "a Hugging Face model folder holds config.json")
        }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ModelError.badConfig(file: file.path, key: "", problem: "not a JSON object")
        }
        return try ModelConfig(json: json, file: file.path)
    }

    /// Parses config.json keys (also the model section of a recipe). `file` names the source in errors.
    public init(json: [String: Any], file: String) throws {
        func value<T>(_ key: String, _ type: T.Type) throws -> T? {
            guard let raw = json[key], !(raw is NSNull) else { return nil }
            if T.self == Int.self, let n = raw as? NSNumber, let i = Int(exactly: n.doubleValue) { return i as? T }
            if T.self == Double.self, let n = raw as? NSNumber { return n.doubleValue as? T }
            if T.self == Bool.self, let b = raw as? Bool { return b as? T }
            if let v = raw as? T { return v }
            throw ModelError.badConfig(file: file, key: key, problem: "expected \(T.self), found \(raw)")
        }
        func required<T>(_ key: String, _ type: T.Type) throws -> T {
            guard let v = try value(key, type) else { throw ModelError.badConfig(file: file, key: key, problem: "missing") }
            return v
        }
        // transformers' AutoConfig needs model_type too: the families differ in biases, so guessing one is silent corruption.
        guard let typeName = try value("model_type", String.self) else {
            throw ModelError.badConfig(file: file, key: "model_type", problem: "missing (llama or qwen2; transformers' AutoConfig requires it too)")
        }
        guard let modelType = ModelType(rawValue: typeName) else {
            throw ModelError.unsupported(file: file, key: "model_type", value: typeName, supported: "llama, qwen2")
        }
        if let act = try value("hidden_act", String.self), act != "silu" {
            throw ModelError.unsupported(file: file, key: "hidden_act", value: act, supported: "silu")
        }
        if try value("mlp_bias", Bool.self) == true {
            throw ModelError.unsupported(file: file, key: "mlp_bias", value: "true", supported: "false")
        }
        // rope_theta: transformers ≤ 4 writes it at the top level, transformers 5 in rope_parameters.
        var theta = try value("rope_theta", Double.self)
        let ropeParameters = (json["rope_parameters"] as? [String: Any]) ?? (json["rope_scaling"] as? [String: Any])
        if let rp = ropeParameters {
            let kind = (rp["rope_type"] as? String) ?? (rp["type"] as? String) ?? "default"
            guard kind == "default" else {
                throw ModelError.unsupported(file: file, key: "rope_parameters.rope_type", value: kind, supported: "default")
            }
            if let t = rp["rope_theta"] as? NSNumber { theta = t.doubleValue }
        }
        let eos: [Int]
        if let list = json["eos_token_id"] as? [NSNumber] {
            eos = try list.map {
                guard let id = Int(exactly: $0.doubleValue) else { throw ModelError.badConfig(file: file, key: "eos_token_id", problem: "expected integers, found \($0)") }
                return id
            }
        } else {
            eos = try value("eos_token_id", Int.self).map { [$0] } ?? []
        }
        self.init(modelType: modelType,
                  vocabSize: try required("vocab_size", Int.self),
                  hiddenSize: try required("hidden_size", Int.self),
                  intermediateSize: try required("intermediate_size", Int.self),
                  numHiddenLayers: try required("num_hidden_layers", Int.self),
                  numAttentionHeads: try required("num_attention_heads", Int.self),
                  numKeyValueHeads: try value("num_key_value_heads", Int.self),
                  headDim: try value("head_dim", Int.self),
                  rmsNormEps: try value("rms_norm_eps", Double.self) ?? 1e-6,
                  ropeTheta: theta ?? 10_000,
                  maxPositionEmbeddings: try value("max_position_embeddings", Int.self) ?? 2048,
                  tieWordEmbeddings: try value("tie_word_embeddings", Bool.self) ?? false,  // LlamaConfig and Qwen2Config both default to untied
                  attentionBias: try value("attention_bias", Bool.self) ?? false,
                  initializerRange: try value("initializer_range", Double.self) ?? 0.02,
                  bosTokenId: try value("bos_token_id", Int.self),
                  eosTokenIds: eos,
                  padTokenId: try value("pad_token_id", Int.self))
        try validate(file: file)
    }

    /// Bounds well above any model Grove can train: a corrupt size is an error naming its key, not an
    /// allocation that aborts (and the bounds keep `parameterCount` from overflowing).
    static let sizeLimits: [(key: String, limit: Int)] = [
        ("vocab_size", 1 << 24), ("hidden_size", 1 << 16), ("intermediate_size", 1 << 18), ("num_hidden_layers", 1 << 10),
        ("num_attention_heads", 1 << 10), ("num_key_value_heads", 1 << 10), ("head_dim", 1 << 12), ("max_position_embeddings", 1 << 24),
    ]

    /// Checks that the sizes are sane, fit together and fit in this machine's memory as float32.
    public func validate(file: String) throws {
        let sizes = [vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads, numKeyValueHeads, headDim, maxPositionEmbeddings]
        for ((key, limit), v) in zip(ModelConfig.sizeLimits, sizes) {
            if v <= 0 { throw ModelError.badConfig(file: file, key: key, problem: "must be positive, found \(v)") }
            if v > limit { throw ModelError.badConfig(file: file, key: key, problem: "\(v) is too large (at most \(limit))") }
        }
        // NaN fails these comparisons too.
        if !(rmsNormEps > 0 && rmsNormEps < 1) { throw ModelError.badConfig(file: file, key: "rms_norm_eps", problem: "must be in (0, 1), found \(rmsNormEps)") }
        if !(ropeTheta > 0 && ropeTheta.isFinite) { throw ModelError.badConfig(file: file, key: "rope_theta", problem: "must be positive, found \(ropeTheta)") }
        for (key, id) in [("bos_token_id", bosTokenId), ("pad_token_id", padTokenId)] + eosTokenIds.map({ ("eos_token_id", $0) }) {
            if let id, !(0..<vocabSize).contains(id) {
                throw ModelError.badConfig(file: file, key: key, problem: "token \(id) is outside the vocabulary (0..<\(vocabSize))")
            }
        }
        // The weights alone, as float32, must fit in memory; the error names the term that dominates.
        let params = parameterCount(), embeddings = vocabSize * hiddenSize * (tieWordEmbeddings ? 1 : 2)
        let memory = ProcessInfo.processInfo.physicalMemory
        if UInt64(params) * 4 > memory {
            throw ModelError.badConfig(file: file, key: embeddings > params - embeddings ? "vocab_size" : "num_hidden_layers",
                                       problem: "\(params) parameters take \(params * 4 / 1_000_000_000) GB as float32, more than this machine's memory (\(memory / 1_000_000_000) GB)")
        }
        if numAttentionHeads % numKeyValueHeads != 0 {
            throw ModelError.badConfig(file: file, key: "num_key_value_heads",
                                       problem: "\(numKeyValueHeads) does not divide num_attention_heads \(numAttentionHeads)")
        }
        if headDim % 2 != 0 { throw ModelError.badConfig(file: file, key: "head_dim", problem: "RoPE needs an even head size, found \(headDim)") }
    }

    /// The config.json dictionary, readable by transformers 4 and 5.
    public var json: [String: Any] {
        var d: [String: Any] = [
            "architectures": architectures, "model_type": modelType.rawValue, "vocab_size": vocabSize,
            "hidden_size": hiddenSize, "intermediate_size": intermediateSize, "num_hidden_layers": numHiddenLayers,
            "num_attention_heads": numAttentionHeads, "num_key_value_heads": numKeyValueHeads, "head_dim": headDim,
            "rms_norm_eps": rmsNormEps, "rope_theta": ropeTheta,
            "rope_parameters": ["rope_theta": ropeTheta, "rope_type": "default"],
            "max_position_embeddings": maxPositionEmbeddings, "tie_word_embeddings": tieWordEmbeddings,
            "hidden_act": "silu", "initializer_range": initializerRange, "torch_dtype": "float32", "dtype": "float32",
            "use_cache": true,
        ]
        if modelType == .llama { d["attention_bias"] = attentionBias; d["mlp_bias"] = false }
        if let bosTokenId { d["bos_token_id"] = bosTokenId }
        if eosTokenIds.count == 1 { d["eos_token_id"] = eosTokenIds[0] } else if !eosTokenIds.isEmpty { d["eos_token_id"] = eosTokenIds }
        if let padTokenId { d["pad_token_id"] = padTokenId }
        return d
    }

    /// Writes `dir/config.json`.
    public func save(to dir: URL) throws {
        let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try data.write(to: dir.appendingPathComponent("config.json"), options: .atomic)
    }

    /// Number of scalar parameters this configuration implies (a tied head counted once).
    public func parameterCount() -> Int {
        let C = hiddenSize, q = numAttentionHeads * headDim, kv = numKeyValueHeads * headDim
        let qkvBias = modelType == .qwen2 || attentionBias ? q + 2 * kv : 0
        let oBias = modelType == .llama && attentionBias ? C : 0
        let attention = C * q + 2 * C * kv + q * C + qkvBias + oBias
        let mlp = 3 * C * intermediateSize
        let perLayer = attention + mlp + 2 * C
        return vocabSize * C * (tieWordEmbeddings ? 1 : 2) + numHiddenLayers * perLayer + C
    }
}
