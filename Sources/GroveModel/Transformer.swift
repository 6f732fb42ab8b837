import Foundation
import GroveTensor

/// A fully connected layer, y = x·Wᵀ + b, with Hugging Face's [out, in] weight layout.
public struct Linear {
    public let weight: Tensor  // (out, in)
    public let bias: Tensor?   // (out)
    /// The LoRA pair when the model has an adapter on this layer (`LoRA.swift`).
    public internal(set) var lora: LowRank?

    init(weight: Tensor, bias: Tensor?) { self.weight = weight; self.bias = bias }

    @inline(__always) func callAsFunction(_ x: Tensor) -> Tensor { linear(x, weight, bias) }
}

/// One pre-norm decoder block: x + attn(norm(x)), then h + mlp(norm(h)). The attention and the
/// feed-forward part each come in the kinds the model's config names (`AttentionKind`, `FeedForwardKind`).
public struct DecoderLayer {
    public let inputLayernorm: Tensor          // (C)
    public internal(set) var attention: Attention
    public let postAttentionLayernorm: Tensor  // (C)
    public internal(set) var mlp: FeedForward

    public enum Attention {
        case grouped(GroupedAttention)
        case latent(LatentAttention)
    }

    public enum FeedForward {
        case dense(GatedMLP)
        case mixtureOfExperts(MixtureOfExperts)
    }

    // The kinds' weights as writable properties, so that key paths reach their projections.
    var grouped: GroupedAttention {
        get { guard case .grouped(let a) = attention else { preconditionFailure("not a grouped-attention layer") }; return a }
        set { attention = .grouped(newValue) }
    }
    var latent: LatentAttention {
        get { guard case .latent(let a) = attention else { preconditionFailure("not a latent-attention layer") }; return a }
        set { attention = .latent(newValue) }
    }
    var dense: GatedMLP {
        get { guard case .dense(let m) = mlp else { preconditionFailure("not a dense layer") }; return m }
        set { mlp = .dense(newValue) }
    }
    var moe: MixtureOfExperts {
        get { guard case .mixtureOfExperts(let m) = mlp else { preconditionFailure("not a MoE layer") }; return m }
        set { mlp = .mixtureOfExperts(newValue) }
    }

    /// The block's linear layers that an adapter may target (all but the routed experts, which
    /// transformers keeps as 3-D parameters, not `nn.Linear`), by Hugging Face path.
    var projections: [(String, WritableKeyPath<DecoderLayer, Linear>)] {
        var out: [(String, WritableKeyPath<DecoderLayer, Linear>)]
        switch attention {
        case .grouped:
            out = [("self_attn.q_proj", \.grouped.qProj), ("self_attn.k_proj", \.grouped.kProj), ("self_attn.v_proj", \.grouped.vProj),
                   ("self_attn.o_proj", \.grouped.oProj)]
        case .latent(let a):
            out = a.qProj != nil ? [("self_attn.q_proj", \.latent.qProj!)] : [("self_attn.q_a_proj", \.latent.qAProj!), ("self_attn.q_b_proj", \.latent.qBProj!)]
            out += [("self_attn.kv_a_proj_with_mqa", \.latent.kvAProjWithMqa), ("self_attn.kv_b_proj", \.latent.kvBProj), ("self_attn.o_proj", \.latent.oProj)]
        }
        switch mlp {
        case .dense: out += [("mlp.gate_proj", \.dense.gateProj), ("mlp.up_proj", \.dense.upProj), ("mlp.down_proj", \.dense.downProj)]
        case .mixtureOfExperts(let m) where m.sharedExperts != nil:
            out += [("mlp.shared_experts.gate_proj", \.moe.sharedExperts!.gateProj), ("mlp.shared_experts.up_proj", \.moe.sharedExperts!.upProj),
                    ("mlp.shared_experts.down_proj", \.moe.sharedExperts!.downProj)]
        case .mixtureOfExperts: break
        }
        return out
    }

    /// Every trainable tensor under its name below `model.layers.i.`, in checkpoint order.
    var namedParameters: [(String, Tensor)] {
        var out: [(String, Tensor)] = [("input_layernorm.weight", inputLayernorm)]
        for (name, path) in projections {
            let linear = self[keyPath: path]
            out.append((name + ".weight", linear.weight))
            if let b = linear.bias { out.append((name + ".bias", b)) }
        }
        if case .latent(let a) = attention {
            if let norm = a.qALayernorm { out.append(("self_attn.q_a_layernorm.weight", norm)) }
            out.append(("self_attn.kv_a_layernorm.weight", a.kvALayernorm))
        }
        if case .mixtureOfExperts(let m) = mlp {
            out.append(("mlp.gate.weight", m.gate))
            for (e, expert) in m.experts.enumerated() {
                for (name, linear) in [("gate_proj", expert.gateProj), ("up_proj", expert.upProj), ("down_proj", expert.downProj)] {
                    out.append(("mlp.experts.\(e).\(name).weight", linear.weight))
                }
            }
        }
        out.append(("post_attention_layernorm.weight", postAttentionLayernorm))
        return out
    }

    /// Tensors saved with the weights but not trained: V3's router correction bias (updated by its own rule).
    var namedBuffers: [(String, Tensor)] {
        guard case .mixtureOfExperts(let m) = mlp, let bias = m.eScoreCorrectionBias else { return [] }
        return [("mlp.gate.e_score_correction_bias", bias)]
    }

    /// Every tensor the block reads, its adapter's included.
    var tensors: [Tensor] {
        namedParameters.map(\.1) + namedBuffers.map(\.1) + projections.flatMap { _, path -> [Tensor] in
            let lora = self[keyPath: path].lora
            return [lora?.a, lora?.b].compactMap { $0 }
        }
    }
}

/// Grouped-query attention's projections (Llama, Qwen2).
public struct GroupedAttention {
    public internal(set) var qProj, kProj, vProj, oProj: Linear
}

/// A SwiGLU MLP, down(silu(gate(x)) ⊙ up(x)): a dense layer, a shared expert block or one routed expert.
public struct GatedMLP {
    public internal(set) var gateProj, upProj, downProj: Linear
}

/// The decoder-only transformer of Hugging Face's `LlamaForCausalLM`, `Qwen2ForCausalLM`,
/// `DeepseekV2ForCausalLM` and `DeepseekV3ForCausalLM`: token embedding, L blocks of RMSNorm →
/// attention with RoPE (grouped-query, or DeepSeek's latent attention) → residual, RMSNorm → SwiGLU
/// MLP (or DeepSeekMoE) → residual, a final RMSNorm and the LM head (tied or not).
///
/// ```swift
/// let model = try Transformer.load(from: URL(fileURLWithPath: "model_dir"))
/// let logits = model.forward(tokens: [1022, 377, 261], batch: 1)   // [3, vocab]
/// ```
public final class Transformer {
    public let config: ModelConfig
    public let embedTokens: Tensor  // (V, C)
    public internal(set) var layers: [DecoderLayer]
    public let norm: Tensor         // (C)
    public let lmHead: Tensor       // (V, C); the same tensor as embedTokens when tied
    let ropeTable: RoPETable
    /// Multiplies the queries before attention's 1/√HS: DeepSeek's YaRN correction of the softmax scale, else 1.
    let queryScale: Float
    /// The LoRA adapter's settings when the model has one (`addAdapter`, `AdapterFolder`).
    public internal(set) var adapter: LoRAConfig?
    /// Whether the forward pass applies the adapter (off: the base model, `withAdapterDisabled`).
    public internal(set) var adapterEnabled = true
    /// Draws the adapter's dropout masks: in training step t, stream t of `dropoutSeed` (`seedDropout`).
    var dropoutRNG = SeededRandom(seed: 0)
    public var dropoutSeed: UInt64 = 0
    /// Activation checkpointing while recording gradients: each decoder block keeps only its input
    /// and is recomputed in the backward pass (`checkpointedBlock`); the same gradients for less memory.
    public var gradientCheckpointing = false
    /// True while a checkpointed block runs its unrecorded forward: its dropout masks are drawn as in training.
    var inCheckpointedForward = false
    /// Latent attention: `generate` caches [c_KV | k_R] per token and decodes with W_UK and W_UV absorbed
    /// (`.latent`), or caches every head's key and value as transformers does (`.keysAndValues`).
    public var decodeCacheLayout = KVCache.Layout.latent
    /// DeepSeekMoE's balancing in training (balance loss α, bias update γ); none by default.
    public var expertBalancing = ExpertBalancing()
    /// The routing counts and balance-loss terms of the training forward passes since the trainer took them.
    let routing = RoutingRecord()
    /// The folder the model was loaded from (PEFT's `base_model_name_or_path` of its adapter).
    public internal(set) var nameOrPath: String?

    /// A model with Hugging Face's initialisation from a seed: normal(0, initializerRange)
    /// for every matrix (the router's too), zero biases, unit norm weights, a zero correction bias.
    public init(config: ModelConfig, seed: UInt64) {
        self.config = config
        var rng = SeededRandom(seed: seed)
        let C = config.hiddenSize, HS = config.headDim, V = config.vocabSize
        let std = Float(config.initializerRange)
        func proj(_ out: Int, _ inp: Int, bias: Bool) -> Linear {
            Linear(weight: Tensor.randn([out, inp], std: std, rng: &rng, requiresGrad: true),
                   bias: bias ? Tensor(zeros: [out], requiresGrad: true) : nil)
        }
        func ones(_ n: Int) -> Tensor { Tensor([Float](repeating: 1, count: n), shape: [n], requiresGrad: true) }
        embedTokens = Tensor.randn([V, C], std: std, rng: &rng, requiresGrad: true)
        let qkvBias = config.attentionBias || config.modelType == .qwen2
        func mlp(_ width: Int) -> GatedMLP {
            GatedMLP(gateProj: proj(width, C, bias: false), upProj: proj(width, C, bias: false), downProj: proj(C, width, bias: false))
        }
        layers = (0..<config.numHiddenLayers).map { i in
            let attention: DecoderLayer.Attention
            switch config.attention {
            case .grouped:
                attention = .grouped(GroupedAttention(
                    qProj: proj(config.numAttentionHeads * HS, C, bias: qkvBias),
                    kProj: proj(config.numKeyValueHeads * HS, C, bias: qkvBias),
                    vProj: proj(config.numKeyValueHeads * HS, C, bias: qkvBias),
                    oProj: proj(C, config.numAttentionHeads * HS, bias: config.attentionBias && config.modelType == .llama)))
            case .latent(let latent):
                attention = .latent(LatentAttention(latent, heads: config.numAttentionHeads, hidden: C, proj: { proj($0, $1, bias: false) }, ones: ones))
            }
            let feedForward: DecoderLayer.FeedForward
            if case .mixtureOfExperts(let moe) = config.feedForward, moe.isMoE(layer: i) {
                feedForward = .mixtureOfExperts(MixtureOfExperts(
                    gate: Tensor.randn([moe.nRoutedExperts, C], std: std, rng: &rng, requiresGrad: true),
                    eScoreCorrectionBias: config.modelType == .deepseekV3 ? Tensor(zeros: [moe.nRoutedExperts]) : nil,
                    experts: (0..<moe.nRoutedExperts).map { _ in mlp(moe.moeIntermediateSize) },
                    sharedExperts: moe.nSharedExperts > 0 ? mlp(moe.moeIntermediateSize * moe.nSharedExperts) : nil))
            } else {
                feedForward = .dense(mlp(config.intermediateSize))
            }
            return DecoderLayer(inputLayernorm: ones(C), attention: attention, postAttentionLayernorm: ones(C), mlp: feedForward)
        }
        norm = ones(C)
        lmHead = config.tieWordEmbeddings ? embedTokens : Tensor.randn([V, C], std: std, rng: &rng, requiresGrad: true)
        let positions = min(config.maxPositionEmbeddings, 4096)
        switch config.attention {
        case .grouped:
            ropeTable = RoPETable(headDim: HS, theta: config.ropeTheta, positions: positions)
            queryScale = 1
        case .latent(let latent):
            // RoPE on the decoupled part only (HS = qk_rope_head_dim), with YaRN's frequencies when configured.
            let (inverse, factor) = config.ropeScaling.frequencies(dim: HS, theta: config.ropeTheta)
            ropeTable = RoPETable(headDim: HS, inverseFrequencies: inverse, attentionFactor: factor,
                                  layout: latent.ropeInterleave ? .pairs : .halves, positions: positions)
            queryScale = Float(config.ropeScaling.softmaxScaleFactor)
        }
    }

    /// Every parameter under its Hugging Face name — with `DecoderLayer`'s, the one place those names
    /// are written. A tied LM head is listed once, as `model.embed_tokens.weight`, as transformers saves it.
    public var namedParameters: [(String, Tensor)] {
        var out: [(String, Tensor)] = [("model.embed_tokens.weight", embedTokens)]
        for (i, layer) in layers.enumerated() {
            out += layer.namedParameters.map { ("model.layers.\(i).\($0.0)", $0.1) }
        }
        out.append(("model.norm.weight", norm))
        if !config.tieWordEmbeddings { out.append(("lm_head.weight", lmHead)) }
        return out
    }

    /// Tensors saved and loaded with the parameters but not trained by the optimizer (V3's router bias).
    public var namedBuffers: [(String, Tensor)] {
        layers.enumerated().flatMap { i, layer in layer.namedBuffers.map { ("model.layers.\(i).\($0.0)", $0.1) } }
    }

    /// The trainable tensors by name: with an adapter only its matrices (the base is frozen),
    /// otherwise every weight.
    public var trainableParameters: [(String, Tensor)] { adapter == nil ? namedParameters : adapterParameters }

    /// The trainable tensors, each once.
    public var parameters: [Tensor] { trainableParameters.map(\.1) }

    /// Number of scalar parameters of the base model (a tied head counted once).
    public var parameterCount: Int { namedParameters.reduce(0) { $0 + $1.1.count } }

    /// Logits [B·T, V] for `tokens` (B rows of T ids, row-major).
    ///
    /// `attentionMask` (B·T, true = real token) hides padding from every query; positions
    /// count real tokens only (HF generate's cumsum − 1), so left padding does not shift RoPE.
    /// With a `cache`, the tokens continue the cached sequences: their keys and values are
    /// appended and attention reads every cached position (inference only, no gradients).
    public func forward(tokens: [Int32], batch B: Int, attentionMask: [Bool]? = nil, cache: KVCache? = nil) -> Tensor {
        logits(hiddenStates(tokens: tokens, batch: B, attentionMask: attentionMask, cache: cache))  // (B·T, V)
    }

    /// Rows continuing one KV cache: its B rows' next T tokens each (row-major), and which are real.
    struct CachedRows {
        let tokens: [Int32]
        let attentionMask: [Bool]?
        let cache: KVCache
    }

    /// Several groups of rows, each continuing its own cache, through the model as one batch: the
    /// rows of every group go through each projection together, so the weights are read once for
    /// all of them (on `packed`, their panel copy, in a decode step; else through BLAS, which packs
    /// them per call), and attention reads each group's own cache. On `packed` every op outside
    /// attention works row by row, so a row's results are the same whichever groups run beside it
    /// (through BLAS, its rounding may follow the number of rows in the call). Final
    /// normalised hidden states [Σ B·T, C], in group order.
    func hiddenStates(_ groups: [CachedRows], packed: DecodeWeights?) -> Tensor {
        let positions = groups.flatMap { $0.cache.append(length: $0.tokens.count / $0.cache.batch, mask: $0.attentionMask) }
        var bounds = [0]
        for g in groups { bounds.append(bounds.last! + g.tokens.count) }
        // Runs `attend` on each group's rows (of q, k, v or the latents: [N, ...]) and stacks the outputs.
        func perGroup(_ attend: (KVCache, Range<Int>) -> Tensor) -> Tensor {
            concatRows(groups.indices.map { g in
                let rows = bounds[g]..<bounds[g + 1]
                return attend(groups[g].cache, rows).reshaped([rows.count, -1])
            })
        }
        var h = gatherRows(embedTokens, groups.flatMap(\.tokens))  // (N, C)
        let latent = groups.first?.cache.layout == .latent
        for (i, layer) in layers.enumerated() {
            h = block(layer, h, positions: positions, packed: packed, attendLatent: !latent ? nil : { q, latents in
                perGroup { cache, rows in self.attendLatentCache(cache, layer: i, q.rows(rows), latents: latents.rows(rows)) }
            }) { q, k, v in
                perGroup { cache, rows in self.attendCache(cache, layer: i, q.rows(rows), k.rows(rows), v.rows(rows)) }
            }
        }
        return rmsNorm(h, norm, eps: Float(config.rmsNormEps))
    }

    /// A decode step's logits [Σ B, V] for groups of rows continuing their caches by one token each.
    func decodeStep(_ groups: [CachedRows], packed: DecodeWeights) -> Tensor {
        packed.lmHead.product(hiddenStates(groups, packed: packed))
    }

    /// The final normalised hidden states [B·T, C] (what the LM head, or a reward model's score head, reads).
    public func hiddenStates(tokens: [Int32], batch B: Int, attentionMask: [Bool]? = nil, cache: KVCache? = nil) -> Tensor {
        precondition(tokens.count % B == 0, "forward: \(tokens.count) tokens in \(B) rows")
        if let cache {
            precondition(cache.batch == B, "forward: the cache holds \(cache.batch) rows, not \(B)")
            return hiddenStates([CachedRows(tokens: tokens, attentionMask: attentionMask, cache: cache)], packed: nil)
        }
        let T = tokens.count / B
        let positions = Transformer.positions(batch: B, length: T, attentionMask: attentionMask)
        var h = gatherRows(embedTokens, tokens)  // (B·T, C)
        for layer in layers {
            let attend = { (q: Tensor, k: Tensor, v: Tensor) in
                attention(q.reshaped([B, T] + q.shape.dropFirst()), k.reshaped([B, T] + k.shape.dropFirst()),
                          v.reshaped([B, T] + v.shape.dropFirst()), keyMask: attentionMask)
            }
            h = gradientCheckpointing && GradMode.isEnabled ? checkpointedBlock(layer, h, positions: positions, attend: attend)
                                                            : block(layer, h, positions: positions, attend: attend)
        }
        return rmsNorm(h, norm, eps: Float(config.rmsNormEps))  // (B·T, C)
    }

    /// Stores the cache's rows' new keys and values (q, k, v: [B·T, heads, HS]) in its layer i and
    /// attends to every cached position.
    func attendCache(_ cache: KVCache, layer i: Int, _ q: Tensor, _ k: Tensor, _ v: Tensor) -> Tensor {
        let B = cache.batch, T = q.shape[0] / B
        cache.store(layer: i, keys: k.reshaped([B, T] + k.shape.dropFirst()), values: v.reshaped([B, T] + v.shape.dropFirst()))
        return attention(q.reshaped([B, T] + q.shape.dropFirst()), cache.keys[i], cache.values[i], keyMask: cache.keyMask,
                         keyLength: cache.length)
    }

    /// A latent cache's `attendCache`: stores the rows' [c_KV | k_R] (latents [B·T, r + dr]) and
    /// attends the absorbed queries to every cached one (values: their first r).
    func attendLatentCache(_ cache: KVCache, layer i: Int, _ q: Tensor, latents: Tensor) -> Tensor {
        guard case .latent(let latent) = config.attention else { preconditionFailure("attendLatentCache: the config's attention is grouped") }
        let B = cache.batch, T = q.shape[0] / B
        cache.store(layer: i, keys: latents.reshaped([B, T, 1, -1]), values: nil)
        return attention(q.reshaped([B, T] + q.shape.dropFirst()), cache.keys[i], cache.keys[i], keyMask: cache.keyMask,
                         keyLength: cache.length, valueSize: latent.kvLoraRank)
    }

    /// The LM head applied to hidden states [N, C] → logits [N, V].
    public func logits(_ hidden: Tensor) -> Tensor { linear(hidden, lmHead) }

    /// One decoder block on N token rows. `attend` maps the rows' q [N, NH, HS] and k [N, KVH, HS],
    /// v [N, KVH, HSV] (RoPE applied) to the attention output [N, NH, HSV]; how rows form sequences is
    /// its business. With `packed` (the weights' panel copies, in a decode step) the projections run on them;
    /// with `attendLatent` a latent-attention layer decodes from its latent cache (`latentAttentionAbsorbed`).
    func block(_ layer: DecoderLayer, _ x: Tensor, positions: [Int32], packed: DecodeWeights? = nil,
               attendLatent: ((Tensor, Tensor) -> Tensor)? = nil, attend: (Tensor, Tensor, Tensor) -> Tensor) -> Tensor {
        let N = x.shape[0], HS = config.headDim
        let a = rmsNorm(x, layer.inputLayernorm, eps: Float(config.rmsNormEps))
        let h: Tensor
        switch layer.attention {
        case .grouped(let g):
            let q = rope(project(g.qProj, a, packed: packed).reshaped([N, config.numAttentionHeads, HS]), positions: positions, table: ropeTable)
            let k = rope(project(g.kProj, a, packed: packed).reshaped([N, config.numKeyValueHeads, HS]), positions: positions, table: ropeTable)
            let v = project(g.vProj, a, packed: packed).reshaped([N, config.numKeyValueHeads, HS])
            let o = attend(q, k, v).reshaped([N, config.numAttentionHeads * HS])
            h = add(x, project(g.oProj, o, packed: packed))
        case .latent(let l):
            h = add(x, attendLatent.map { latentAttentionAbsorbed(l, a, positions: positions, packed: packed, attend: $0) }
                    ?? latentAttention(l, a, positions: positions, packed: packed, attend: attend))
        }
        let m = rmsNorm(h, layer.postAttentionLayernorm, eps: Float(config.rmsNormEps))
        switch layer.mlp {
        case .dense(let d):
            return add(h, project(d.downProj, swiglu(project(d.gateProj, m, packed: packed), project(d.upProj, m, packed: packed)), packed: packed))
        case .mixtureOfExperts(let moe):
            return add(h, expertsMLP(moe, m, packed: packed))
        }
    }

    /// One decoder block under activation checkpointing: the forward records no graph but draws its
    /// dropout masks; the backward pass runs it again from the saved input with the generator set
    /// back, so the masks and every gradient are those of the recorded block.
    func checkpointedBlock(_ layer: DecoderLayer, _ x: Tensor, positions: [Int32],
                           attend: @escaping (Tensor, Tensor, Tensor) -> Tensor) -> Tensor {
        let masks = dropoutRNG
        inCheckpointedForward = true
        defer { inCheckpointedForward = false }
        return checkpointed(x, parameters: layer.tensors, recompute: { run in
            let after = self.dropoutRNG
            self.dropoutRNG = masks
            defer { self.dropoutRNG = after }
            return run()
        }) { x in
            self.block(layer, x, positions: positions, attend: attend)
        }
    }

    /// RoPE positions: 0, 1, 2, … per row, counting only real tokens when a mask is given
    /// (padding gets position 0; no real query ever sees it).
    static func positions(batch B: Int, length T: Int, attentionMask: [Bool]?) -> [Int32] {
        var out = [Int32](repeating: 0, count: B * T)
        for b in 0..<B {
            var next: Int32 = 0
            for t in 0..<T where attentionMask?[b * T + t] ?? true {
                out[b * T + t] = next
                next += 1
            }
        }
        return out
    }
}
