import Foundation

/// The architecture of a Llama-, Qwen2- or DeepSeek-V2/V3-family model, read from and written to
/// Hugging Face's `config.json` (Swift names are the camelCase of its keys).
public struct ModelConfig: Equatable {
    /// The model families Grove runs.
    public enum ModelType: String, CaseIterable { case llama, qwen2, deepseekV2 = "deepseek_v2", deepseekV3 = "deepseek_v3" }

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
    /// Grouped-query or latent attention (DeepSeek); `headDim` is then the RoPE key's size, as in transformers.
    public var attention: AttentionKind
    /// Dense MLPs or DeepSeekMoE; `intermediateSize` is the dense layers' width.
    public var feedForward: FeedForwardKind
    public var ropeScaling: RoPEScaling

    public var architectures: [String] {
        switch modelType {
        case .llama: return ["LlamaForCausalLM"]
        case .qwen2: return ["Qwen2ForCausalLM"]
        case .deepseekV2: return ["DeepseekV2ForCausalLM"]
        case .deepseekV3: return ["DeepseekV3ForCausalLM"]
        }
    }

    public init(modelType: ModelType = .qwen2, vocabSize: Int, hiddenSize: Int, intermediateSize: Int,
                numHiddenLayers: Int, numAttentionHeads: Int, numKeyValueHeads: Int? = nil, headDim: Int? = nil,
                rmsNormEps: Double = 1e-6, ropeTheta: Double = 10_000, maxPositionEmbeddings: Int = 2048,
                tieWordEmbeddings: Bool = true, attentionBias: Bool = false, initializerRange: Double = 0.02,
                bosTokenId: Int? = nil, eosTokenIds: [Int] = [], padTokenId: Int? = nil,
                attention: AttentionKind = .grouped, feedForward: FeedForwardKind = .dense, ropeScaling: RoPEScaling = .none) {
        self.modelType = modelType; self.vocabSize = vocabSize; self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize; self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads; self.numKeyValueHeads = numKeyValueHeads ?? numAttentionHeads
        self.headDim = headDim ?? hiddenSize / max(numAttentionHeads, 1)  // validate names a zero head count
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta; self.maxPositionEmbeddings = maxPositionEmbeddings
        self.tieWordEmbeddings = tieWordEmbeddings; self.attentionBias = attentionBias
        self.initializerRange = initializerRange; self.bosTokenId = bosTokenId; self.eosTokenIds = eosTokenIds
        self.padTokenId = padTokenId
        self.attention = attention; self.feedForward = feedForward; self.ropeScaling = ropeScaling
        if case .latent(let latent) = attention {  // transformers: head_dim = qk_rope_head_dim, one KV head per query head
            self.headDim = latent.qkRopeHeadDim
            self.numKeyValueHeads = numAttentionHeads
        }
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
        let keys = ConfigKeys(json: json, file: file)
        func value<T>(_ key: String, _ type: T.Type) throws -> T? { try keys.value(key, type) }
        func required<T>(_ key: String, _ type: T.Type) throws -> T { try keys.required(key, type) }
        // transformers' AutoConfig needs model_type too: the families differ in biases, so guessing one is silent corruption.
        guard let typeName = try value("model_type", String.self) else {
            throw ModelError.badConfig(file: file, key: "model_type", problem: "missing (llama, qwen2, deepseek_v2 or deepseek_v3; transformers' AutoConfig requires it too)")
        }
        guard let modelType = ModelType(rawValue: typeName) else {
            throw ModelError.unsupported(file: file, key: "model_type", value: typeName, supported: ModelType.allCases.map(\.rawValue).joined(separator: ", "))
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
        var ropeScaling = RoPEScaling.none
        if let rp = ropeParameters {
            ropeScaling = try ModelConfig.ropeScaling(rp, modelType: modelType, maxPositionEmbeddings: try value("max_position_embeddings", Int.self), file: file)
            if let t = rp["rope_theta"] as? NSNumber { theta = t.doubleValue }
        }
        let (attention, feedForward) = modelType == .deepseekV2 || modelType == .deepseekV3
            ? try ModelConfig.deepSeekParts(modelType, file: file, keys: keys) : (.grouped, .dense)
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
                  padTokenId: try value("pad_token_id", Int.self),
                  attention: attention, feedForward: feedForward, ropeScaling: ropeScaling)
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
        if headDim % 2 != 0 {  // latent attention: the RoPE key's size
            throw ModelError.badConfig(file: file, key: attention == .grouped ? "head_dim" : "qk_rope_head_dim", problem: "RoPE needs an even head size, found \(headDim)")
        }
        if case .latent(let latent) = attention, case .mixtureOfExperts(let moe) = feedForward { try validateDeepSeek(latent, moe, file: file) }
    }

    /// The config.json dictionary, readable by transformers 4 and 5.
    public var json: [String: Any] {
        var d: [String: Any] = [
            "architectures": architectures, "model_type": modelType.rawValue, "vocab_size": vocabSize,
            "hidden_size": hiddenSize, "intermediate_size": intermediateSize, "num_hidden_layers": numHiddenLayers,
            "num_attention_heads": numAttentionHeads, "num_key_value_heads": numKeyValueHeads, "head_dim": headDim,
            "rms_norm_eps": rmsNormEps, "rope_theta": ropeTheta,
            "rope_parameters": ropeParametersJSON,
            "max_position_embeddings": maxPositionEmbeddings, "tie_word_embeddings": tieWordEmbeddings,
            "hidden_act": "silu", "initializer_range": initializerRange, "torch_dtype": "float32", "dtype": "float32",
            "use_cache": true,
        ]
        if modelType == .llama { d["attention_bias"] = attentionBias; d["mlp_bias"] = false }
        if let bosTokenId { d["bos_token_id"] = bosTokenId }
        if eosTokenIds.count == 1 { d["eos_token_id"] = eosTokenIds[0] } else if !eosTokenIds.isEmpty { d["eos_token_id"] = eosTokenIds }
        if let padTokenId { d["pad_token_id"] = padTokenId }
        if case .latent(let latent) = attention, case .mixtureOfExperts(let moe) = feedForward {
            d.merge(deepSeekJSON(latent, moe)) { _, new in new }
        }
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
        if case .latent(let latent) = attention, case .mixtureOfExperts(let moe) = feedForward {
            return deepSeekParameterCount(latent, moe)
        }
        let C = hiddenSize, q = numAttentionHeads * headDim, kv = numKeyValueHeads * headDim
        let qkvBias = modelType == .qwen2 || attentionBias ? q + 2 * kv : 0
        let oBias = modelType == .llama && attentionBias ? C : 0
        let attention = C * q + 2 * C * kv + q * C + qkvBias + oBias
        let mlp = 3 * C * intermediateSize
        let perLayer = attention + mlp + 2 * C
        return vocabSize * C * (tieWordEmbeddings ? 1 : 2) + numHiddenLayers * perLayer + C
    }
}

extension ModelConfig {
    /// `parameterCount` of a DeepSeek model (the V3 router's correction bias is a buffer, not counted).
    func deepSeekParameterCount(_ latent: LatentAttentionConfig, _ moe: MixtureOfExpertsConfig) -> Int {
        let C = hiddenSize, NH = numAttentionHeads, r = latent.kvLoraRank
        let query = latent.qLoraRank.map { C * $0 + $0 + $0 * NH * latent.qkHeadDim } ?? C * NH * latent.qkHeadDim
        let attention = query + C * (r + latent.qkRopeHeadDim) + r + r * NH * (latent.qkNopeHeadDim + latent.vHeadDim) + NH * latent.vHeadDim * C
        let dense = 3 * C * intermediateSize
        let experts = (moe.nRoutedExperts + moe.nSharedExperts) * 3 * C * moe.moeIntermediateSize + moe.nRoutedExperts * C
        let mlps = (0..<numHiddenLayers).reduce(0) { $0 + (moe.isMoE(layer: $1) ? experts : dense) }
        return vocabSize * C * (tieWordEmbeddings ? 1 : 2) + numHiddenLayers * (attention + 2 * C) + mlps + C
    }
}
