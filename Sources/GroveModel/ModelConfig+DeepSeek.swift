import Foundation

// The parts of a DeepSeek-V2/V3 config.json that Llama and Qwen2 do not have: multi-head latent
// attention, DeepSeekMoE and YaRN RoPE (DeepSeek-V2, arXiv 2405.04434; DeepSeek-V3, 2412.19437).

/// How a decoder block attends.
public enum AttentionKind: Equatable {
    /// Grouped-query attention (Llama, Qwen2): q, k, v, o projections, RoPE on whole heads.
    case grouped
    /// Multi-head latent attention (DeepSeek-V2/V3): keys and values from a low-rank latent.
    case latent(LatentAttentionConfig)
}

/// How a decoder block's feed-forward part is built.
public enum FeedForwardKind: Equatable {
    /// One SwiGLU MLP of `intermediate_size` (every layer of Llama and Qwen2).
    case dense
    /// DeepSeekMoE after the first `firstKDenseReplace` dense layers.
    case mixtureOfExperts(MixtureOfExpertsConfig)
}

/// Multi-head latent attention's sizes (DeepSeek-V2 §2.1). Per token, the hidden state h gives
/// c_Q = W_DQ·h (rank `qLoraRank`; nil: q = W_Q·h directly, V2-Lite), [c_KV | k_R] = W_DKV·h
/// (`kv_a_proj_with_mqa`: rank `kvLoraRank` plus one shared RoPE key of `qkRopeHeadDim`), and per head
/// [k_C | v] = W_UKV·norm(c_KV) (`kv_b_proj`). A query head is [q_C (qkNope) | RoPE(q_R) (qkRope)],
/// a key head [k_C | RoPE(k_R)], a value head `vHeadDim` wide.
public struct LatentAttentionConfig: Equatable {
    public var qLoraRank: Int?
    public var kvLoraRank: Int
    public var qkNopeHeadDim: Int
    public var qkRopeHeadDim: Int
    public var vHeadDim: Int
    /// RoPE on (x_{2i}, x_{2i+1}) pairs: always in V2 (complex multiplication), V3's `rope_interleave`.
    public var ropeInterleave: Bool

    public init(qLoraRank: Int?, kvLoraRank: Int, qkNopeHeadDim: Int, qkRopeHeadDim: Int, vHeadDim: Int, ropeInterleave: Bool = true) {
        self.qLoraRank = qLoraRank; self.kvLoraRank = kvLoraRank; self.qkNopeHeadDim = qkNopeHeadDim
        self.qkRopeHeadDim = qkRopeHeadDim; self.vHeadDim = vHeadDim; self.ropeInterleave = ropeInterleave
    }

    /// A query or key head: qkNope + qkRope.
    public var qkHeadDim: Int { qkNopeHeadDim + qkRopeHeadDim }
}

/// DeepSeekMoE's sizes and routing (DeepSeek-V2 §2.2, V3 §2.1.2): `nSharedExperts` experts every token
/// goes through (one MLP of width nShared·moeIntermediateSize) plus `numExpertsPerTok` of
/// `nRoutedExperts` fine-grained experts chosen per token by the router.
public struct MixtureOfExpertsConfig: Equatable {
    public var firstKDenseReplace: Int
    public var moeIntermediateSize: Int
    public var nSharedExperts: Int
    public var nRoutedExperts: Int
    public var numExpertsPerTok: Int
    public var selection: ExpertSelection
    /// Divide the chosen weights by their sum (V3's `norm_topk_prob`; transformers' DeepseekV2 ignores the key).
    public var normTopkProb: Bool
    public var routedScalingFactor: Double

    public init(firstKDenseReplace: Int, moeIntermediateSize: Int, nSharedExperts: Int, nRoutedExperts: Int,
                numExpertsPerTok: Int, selection: ExpertSelection = .greedy, normTopkProb: Bool = false, routedScalingFactor: Double = 1) {
        self.firstKDenseReplace = firstKDenseReplace; self.moeIntermediateSize = moeIntermediateSize
        self.nSharedExperts = nSharedExperts; self.nRoutedExperts = nRoutedExperts; self.numExpertsPerTok = numExpertsPerTok
        self.selection = selection; self.normTopkProb = normTopkProb; self.routedScalingFactor = routedScalingFactor
    }

    /// Whether layer `i` is a MoE layer (the first `firstKDenseReplace` are dense).
    public func isMoE(layer i: Int) -> Bool { i >= firstKDenseReplace }
}

/// How the router picks each token's experts.
public enum ExpertSelection: Equatable {
    /// V2 `greedy`: the K best softmax scores.
    case greedy
    /// V2 `group_limited_greedy`: experts in `groups` equal groups, a group scored by its best expert;
    /// the K best among the `topGroups` best groups.
    case groupLimited(groups: Int, topGroups: Int)
    /// V3 (`noaux_tc`): sigmoid scores plus the per-expert `e_score_correction_bias` choose (a group scored
    /// by the sum of its two best), the scores without the bias weigh.
    case biasCorrected(groups: Int, topGroups: Int)
}

/// RoPE frequency scaling (`rope_parameters.rope_type`).
public enum RoPEScaling: Equatable {
    case none
    /// YaRN (Peng et al. 2023) as transformers' `_compute_yarn_parameters` computes it.
    case yarn(factor: Double, originalMaxPositionEmbeddings: Int, betaFast: Double, betaSlow: Double,
              mscale: Double?, mscaleAllDim: Double?, attentionFactor: Double?, truncate: Bool)

    /// 0.1·m·ln(s) + 1 for s > 1, else 1 (YaRN's magnitude scale).
    static func yarnMscale(_ s: Double, _ m: Double = 1) -> Double { s <= 1 ? 1 : 0.1 * m * log(s) + 1 }

    /// inv_freq_i for i < dim/2 and the factor on cos and sin, in float32 where transformers uses it:
    /// YaRN blends θ^(−2i/d) (extrapolation) and θ^(−2i/d)/factor (interpolation) with a linear ramp
    /// between the dimensions that turn beta_fast and beta_slow times over the original context.
    func frequencies(dim: Int, theta: Double) -> (inverse: [Float], attentionFactor: Float) {
        let half = dim / 2
        let posFreqs = (0..<half).map { Float(pow(theta, Double(Float(2 * $0) / Float(dim)))) }
        guard case let .yarn(factor, original, betaFast, betaSlow, mscale, mscaleAllDim, attentionFactor, truncate) = self else {
            return (posFreqs.map { 1 / $0 }, 1)
        }
        let attention: Double
        if let attentionFactor { attention = attentionFactor }
        else if let mscale, let mscaleAllDim, mscale != 0, mscaleAllDim != 0 {
            attention = RoPEScaling.yarnMscale(factor, mscale) / RoPEScaling.yarnMscale(factor, mscaleAllDim)
        } else { attention = RoPEScaling.yarnMscale(factor) }
        // The dimension that turns r times over the original context: d·ln(L / (2π r)) / (2 ln θ).
        func correctionDim(_ r: Double) -> Double { Double(dim) * log(Double(original) / (r * 2 * .pi)) / (2 * log(theta)) }
        var low = correctionDim(betaFast), high = correctionDim(betaSlow)
        if truncate { low = low.rounded(.down); high = high.rounded(.up) }
        low = max(low, 0); high = min(high, Double(dim - 1))
        if low == high { high += 0.001 }
        let inverse = (0..<half).map { i -> Float in
            let ramp = min(max((Float(i) - Float(low)) / Float(high - low), 0), 1)
            let extrapolation = 1 - ramp
            return 1 / (Float(factor) * posFreqs[i]) * (1 - extrapolation) + 1 / posFreqs[i] * extrapolation
        }
        return (inverse, Float(attention))
    }

    /// DeepSeek's correction of the softmax scale (`yarn_apply_mscale`): mscale(factor, mscale_all_dim)².
    var softmaxScaleFactor: Double {
        guard case let .yarn(factor, _, _, _, _, mscaleAllDim?, _, _) = self, mscaleAllDim != 0 else { return 1 }
        let m = RoPEScaling.yarnMscale(factor, mscaleAllDim)
        return m * m
    }
}

extension ModelConfig {
    /// Reads DeepSeek's attention, MoE and RoPE keys (`keys` reads one typed value, nil when absent or null).
    static func deepSeekParts(_ modelType: ModelType, file: String, keys: ConfigKeys) throws
        -> (AttentionKind, FeedForwardKind) {
        if try keys.value("attention_bias", Bool.self) == true {
            throw ModelError.unsupported(file: file, key: "attention_bias", value: "true", supported: "false")
        }
        let v3 = modelType == .deepseekV3
        let latent = LatentAttentionConfig(
            qLoraRank: try keys.value("q_lora_rank", Int.self),
            kvLoraRank: try keys.required("kv_lora_rank", Int.self),
            qkNopeHeadDim: try keys.required("qk_nope_head_dim", Int.self),
            qkRopeHeadDim: try keys.required("qk_rope_head_dim", Int.self),
            vHeadDim: try keys.required("v_head_dim", Int.self),
            ropeInterleave: v3 ? try keys.value("rope_interleave", Bool.self) ?? true : true)
        let groups = try keys.value("n_group", Int.self), topGroups = try keys.value("topk_group", Int.self)
        let selection: ExpertSelection
        if v3 {
            // transformers' DeepseekV3TopkRouter always routes by groups; V3's config defaults are 8 and 4.
            selection = .biasCorrected(groups: groups ?? 8, topGroups: topGroups ?? 4)
        } else {
            switch try keys.value("topk_method", String.self) ?? "greedy" {
            case "greedy": selection = .greedy
            case "group_limited_greedy":
                guard let groups, let topGroups else {
                    throw ModelError.badConfig(file: file, key: groups == nil ? "n_group" : "topk_group", problem: "group_limited_greedy needs n_group and topk_group")
                }
                selection = .groupLimited(groups: groups, topGroups: topGroups)
            case let other: throw ModelError.unsupported(file: file, key: "topk_method", value: other, supported: "greedy, group_limited_greedy")
            }
        }
        let moe = MixtureOfExpertsConfig(
            firstKDenseReplace: try keys.value("first_k_dense_replace", Int.self) ?? (v3 ? 3 : 0),
            moeIntermediateSize: try keys.required("moe_intermediate_size", Int.self),
            nSharedExperts: try keys.value("n_shared_experts", Int.self) ?? (v3 ? 1 : 2),
            nRoutedExperts: try keys.required("n_routed_experts", Int.self),
            numExpertsPerTok: try keys.required("num_experts_per_tok", Int.self),
            selection: selection,
            // transformers' DeepseekV2 router never normalises (the V2 checkpoints all say false).
            normTopkProb: v3 ? try keys.value("norm_topk_prob", Bool.self) ?? true : false,
            routedScalingFactor: try keys.value("routed_scaling_factor", Double.self) ?? (v3 ? 2.5 : 1))
        return (.latent(latent), .mixtureOfExperts(moe))
    }

    /// `rope_parameters` (or the legacy `rope_scaling`) beyond θ: YaRN for DeepSeek, nothing else.
    static func ropeScaling(_ rp: [String: Any], modelType: ModelType, maxPositionEmbeddings: Int?, file: String) throws -> RoPEScaling {
        let kind = (rp["rope_type"] as? String) ?? (rp["type"] as? String) ?? "default"
        let deepSeek = modelType == .deepseekV2 || modelType == .deepseekV3
        switch kind {
        case "default": return .none
        case "yarn" where deepSeek:
            let keys = ConfigKeys(json: rp, file: file, prefix: "rope_parameters.")
            let original = try keys.value("original_max_position_embeddings", Int.self) ?? maxPositionEmbeddings ?? 2048
            guard let factor = try keys.value("factor", Double.self) ?? maxPositionEmbeddings.map({ Double($0) / Double(original) }) else {
                throw ModelError.badConfig(file: file, key: "rope_parameters.factor", problem: "missing")
            }
            if !(factor > 0 && factor.isFinite) { throw ModelError.badConfig(file: file, key: "rope_parameters.factor", problem: "must be positive, found \(factor)") }
            if original <= 0 { throw ModelError.badConfig(file: file, key: "rope_parameters.original_max_position_embeddings", problem: "must be positive, found \(original)") }
            // transformers: `beta_fast or 32`, `beta_slow or 1` (0 means the default too).
            let betaFast = try keys.value("beta_fast", Double.self).flatMap { $0 == 0 ? nil : $0 } ?? 32
            let betaSlow = try keys.value("beta_slow", Double.self).flatMap { $0 == 0 ? nil : $0 } ?? 1
            return .yarn(factor: factor, originalMaxPositionEmbeddings: original, betaFast: betaFast, betaSlow: betaSlow,
                         mscale: try keys.value("mscale", Double.self), mscaleAllDim: try keys.value("mscale_all_dim", Double.self),
                         attentionFactor: try keys.value("attention_factor", Double.self), truncate: try keys.value("truncate", Bool.self) ?? true)
        default:
            throw ModelError.unsupported(file: file, key: "rope_parameters.rope_type", value: kind, supported: deepSeek ? "default, yarn" : "default")
        }
    }

    /// DeepSeek's keys for config.json (transformers' DeepseekV2Config / DeepseekV3Config names).
    func deepSeekJSON(_ latent: LatentAttentionConfig, _ moe: MixtureOfExpertsConfig) -> [String: Any] {
        var d: [String: Any] = [
            "q_lora_rank": latent.qLoraRank.map { $0 as Any } ?? NSNull(), "kv_lora_rank": latent.kvLoraRank,
            "qk_nope_head_dim": latent.qkNopeHeadDim, "qk_rope_head_dim": latent.qkRopeHeadDim, "v_head_dim": latent.vHeadDim,
            "first_k_dense_replace": moe.firstKDenseReplace, "moe_intermediate_size": moe.moeIntermediateSize,
            "n_shared_experts": moe.nSharedExperts, "n_routed_experts": moe.nRoutedExperts, "num_experts_per_tok": moe.numExpertsPerTok,
            "norm_topk_prob": moe.normTopkProb, "routed_scaling_factor": moe.routedScalingFactor, "attention_bias": false, "mlp_bias": false,
        ]
        switch moe.selection {
        case .greedy: d["topk_method"] = "greedy"; d["n_group"] = NSNull(); d["topk_group"] = NSNull()
        case let .groupLimited(groups, top): d["topk_method"] = "group_limited_greedy"; d["n_group"] = groups; d["topk_group"] = top
        case let .biasCorrected(groups, top): d["n_group"] = groups; d["topk_group"] = top
        }
        if modelType == .deepseekV3 { d["rope_interleave"] = latent.ropeInterleave }
        return d
    }

    /// The `rope_parameters` dictionary.
    var ropeParametersJSON: [String: Any] {
        guard case let .yarn(factor, original, betaFast, betaSlow, mscale, mscaleAllDim, attentionFactor, truncate) = ropeScaling else {
            return ["rope_theta": ropeTheta, "rope_type": "default"]
        }
        var d: [String: Any] = ["rope_theta": ropeTheta, "rope_type": "yarn", "factor": factor, "original_max_position_embeddings": original,
                                "beta_fast": betaFast, "beta_slow": betaSlow, "truncate": truncate]
        if let mscale { d["mscale"] = mscale }
        if let mscaleAllDim { d["mscale_all_dim"] = mscaleAllDim }
        if let attentionFactor { d["attention_factor"] = attentionFactor }
        return d
    }

    /// Checks DeepSeek's sizes against each other.
    func validateDeepSeek(_ latent: LatentAttentionConfig, _ moe: MixtureOfExpertsConfig, file: String) throws {
        let sizes: [(String, Int?)] = [("q_lora_rank", latent.qLoraRank), ("kv_lora_rank", latent.kvLoraRank), ("qk_nope_head_dim", latent.qkNopeHeadDim),
                                       ("qk_rope_head_dim", latent.qkRopeHeadDim), ("v_head_dim", latent.vHeadDim),
                                       ("moe_intermediate_size", moe.moeIntermediateSize), ("n_routed_experts", moe.nRoutedExperts),
                                       ("num_experts_per_tok", moe.numExpertsPerTok)]
        for (key, v) in sizes {
            if let v, v <= 0 { throw ModelError.badConfig(file: file, key: key, problem: "must be positive, found \(v)") }
            if let v, v > 1 << 16 { throw ModelError.badConfig(file: file, key: key, problem: "\(v) is too large (at most \(1 << 16))") }
        }
        if moe.nSharedExperts < 0 { throw ModelError.badConfig(file: file, key: "n_shared_experts", problem: "must not be negative, found \(moe.nSharedExperts)") }
        if moe.firstKDenseReplace < 0 { throw ModelError.badConfig(file: file, key: "first_k_dense_replace", problem: "must not be negative, found \(moe.firstKDenseReplace)") }
        if moe.numExpertsPerTok > moe.nRoutedExperts {
            throw ModelError.badConfig(file: file, key: "num_experts_per_tok", problem: "\(moe.numExpertsPerTok) is more than n_routed_experts \(moe.nRoutedExperts)")
        }
        if !(moe.routedScalingFactor > 0 && moe.routedScalingFactor.isFinite) {
            throw ModelError.badConfig(file: file, key: "routed_scaling_factor", problem: "must be positive, found \(moe.routedScalingFactor)")
        }
        switch moe.selection {
        case .greedy: break
        case let .groupLimited(groups, top), let .biasCorrected(groups, top):
            let v3 = modelType == .deepseekV3
            if groups <= 0 || moe.nRoutedExperts % groups != 0 {
                throw ModelError.badConfig(file: file, key: "n_group", problem: "\(groups) does not divide n_routed_experts \(moe.nRoutedExperts)")
            }
            if v3 && moe.nRoutedExperts / groups < 2 {
                throw ModelError.badConfig(file: file, key: "n_group", problem: "V3 scores a group by its two best experts: groups need 2 or more, found \(moe.nRoutedExperts / groups)")
            }
            if top <= 0 || top > groups { throw ModelError.badConfig(file: file, key: "topk_group", problem: "\(top) is not in 1...n_group (\(groups))") }
            if top * (moe.nRoutedExperts / groups) < moe.numExpertsPerTok {
                throw ModelError.badConfig(file: file, key: "topk_group", problem: "\(top) groups of \(moe.nRoutedExperts / groups) hold fewer than num_experts_per_tok \(moe.numExpertsPerTok) experts")
            }
        }
    }
}

/// Typed reads of a config dictionary's keys; errors name the file and the key.
struct ConfigKeys {
    let json: [String: Any], file: String
    var prefix = ""

    /// The value of `key`, nil when it is absent or null.
    func value<T>(_ key: String, _ type: T.Type) throws -> T? {
        guard let raw = json[key], !(raw is NSNull) else { return nil }
        if T.self == Int.self, let n = raw as? NSNumber, let i = Int(exactly: n.doubleValue) { return i as? T }
        if T.self == Double.self, let n = raw as? NSNumber { return n.doubleValue as? T }
        if T.self == Bool.self, let b = raw as? Bool { return b as? T }
        if let v = raw as? T { return v }
        throw ModelError.badConfig(file: file, key: prefix + key, problem: "expected \(T.self), found \(raw)")
    }

    /// The value of `key`; throws when it is absent.
    func required<T>(_ key: String, _ type: T.Type) throws -> T {
        guard let v = try value(key, type) else { throw ModelError.badConfig(file: file, key: prefix + key, problem: "missing") }
        return v
    }
}
