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

/// One pre-norm decoder block: x + attn(norm(x)), then h + mlp(norm(h)).
public struct DecoderLayer {
    public let inputLayernorm: Tensor          // (C)
    public internal(set) var qProj, kProj, vProj, oProj: Linear
    public let postAttentionLayernorm: Tensor  // (C)
    public internal(set) var gateProj, upProj, downProj: Linear

    /// Every tensor the block reads, its adapter's included.
    var tensors: [Tensor] {
        [inputLayernorm, postAttentionLayernorm] + Transformer.projections.flatMap { _, path -> [Tensor] in
            let linear = self[keyPath: path]
            return [linear.weight] + [linear.bias, linear.lora?.a, linear.lora?.b].compactMap { $0 }
        }
    }
}

/// The decoder-only transformer of Hugging Face's `LlamaForCausalLM` and `Qwen2ForCausalLM`:
/// token embedding, L blocks of RMSNorm → grouped-query attention with RoPE → residual,
/// RMSNorm → SwiGLU MLP → residual, a final RMSNorm and the LM head (tied or not).
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
    /// The folder the model was loaded from (PEFT's `base_model_name_or_path` of its adapter).
    public internal(set) var nameOrPath: String?

    /// Every projection of a decoder block: its Hugging Face path and where it is.
    static let projections: [(String, WritableKeyPath<DecoderLayer, Linear>)] = [
        ("self_attn.q_proj", \.qProj), ("self_attn.k_proj", \.kProj), ("self_attn.v_proj", \.vProj), ("self_attn.o_proj", \.oProj),
        ("mlp.gate_proj", \.gateProj), ("mlp.up_proj", \.upProj), ("mlp.down_proj", \.downProj),
    ]

    /// A model with Hugging Face's initialisation from a seed: normal(0, initializerRange)
    /// for every matrix, zero biases, unit norm weights.
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
        layers = (0..<config.numHiddenLayers).map { _ in
            DecoderLayer(
                inputLayernorm: ones(C),
                qProj: proj(config.numAttentionHeads * HS, C, bias: qkvBias),
                kProj: proj(config.numKeyValueHeads * HS, C, bias: qkvBias),
                vProj: proj(config.numKeyValueHeads * HS, C, bias: qkvBias),
                oProj: proj(C, config.numAttentionHeads * HS, bias: config.attentionBias && config.modelType == .llama),
                postAttentionLayernorm: ones(C),
                gateProj: proj(config.intermediateSize, C, bias: false),
                upProj: proj(config.intermediateSize, C, bias: false),
                downProj: proj(C, config.intermediateSize, bias: false))
        }
        norm = ones(C)
        lmHead = config.tieWordEmbeddings ? embedTokens : Tensor.randn([V, C], std: std, rng: &rng, requiresGrad: true)
        ropeTable = RoPETable(headDim: HS, theta: config.ropeTheta, positions: min(config.maxPositionEmbeddings, 4096))
    }

    /// Every parameter under its Hugging Face name — the one place those names are written.
    /// A tied LM head is listed once, as `model.embed_tokens.weight`, as transformers saves it.
    public var namedParameters: [(String, Tensor)] {
        var out: [(String, Tensor)] = [("model.embed_tokens.weight", embedTokens)]
        for (i, layer) in layers.enumerated() {
            let p = "model.layers.\(i)."
            out.append((p + "input_layernorm.weight", layer.inputLayernorm))
            for (name, path) in Transformer.projections {
                let lin = layer[keyPath: path]
                out.append((p + name + ".weight", lin.weight))
                if let b = lin.bias { out.append((p + name + ".bias", b)) }
            }
            out.append((p + "post_attention_layernorm.weight", layer.postAttentionLayernorm))
        }
        out.append(("model.norm.weight", norm))
        if !config.tieWordEmbeddings { out.append(("lm_head.weight", lmHead)) }
        return out
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

    /// `forward` for a decode step: the products run on `packed`, the weights' panel copy.
    func decodeStep(tokens: [Int32], attentionMask: [Bool], cache: KVCache, packed: DecodeWeights) -> Tensor {
        packed.lmHead.product(hiddenStates(tokens: tokens, batch: tokens.count, attentionMask: attentionMask, cache: cache, packed: packed))
    }

    /// The final normalised hidden states [B·T, C] (what the LM head, or a reward model's score head, reads).
    public func hiddenStates(tokens: [Int32], batch B: Int, attentionMask: [Bool]? = nil, cache: KVCache? = nil) -> Tensor {
        hiddenStates(tokens: tokens, batch: B, attentionMask: attentionMask, cache: cache, packed: nil)
    }

    func hiddenStates(tokens: [Int32], batch B: Int, attentionMask: [Bool]?, cache: KVCache?, packed: DecodeWeights?) -> Tensor {
        precondition(tokens.count % B == 0, "forward: \(tokens.count) tokens in \(B) rows")
        precondition(cache == nil || cache!.batch == B, "forward: the cache holds \(cache!.batch) rows, not \(B)")
        let T = tokens.count / B, NH = config.numAttentionHeads, KVH = config.numKeyValueHeads, HS = config.headDim
        let positions = cache?.append(length: T, mask: attentionMask)
            ?? Transformer.positions(batch: B, length: T, attentionMask: attentionMask)
        var h = gatherRows(embedTokens, tokens)  // (B·T, C)
        for (i, layer) in layers.enumerated() {
            if gradientCheckpointing && GradMode.isEnabled && cache == nil && packed == nil {
                h = checkpointedBlock(layer, h, positions: positions) { q, k, v in
                    attention(q.reshaped([B, T, NH, HS]), k.reshaped([B, T, KVH, HS]), v.reshaped([B, T, KVH, HS]), keyMask: attentionMask)
                }
                continue
            }
            h = block(layer, h, positions: positions, packed: packed?.layers[i]) { q, k, v in
                let q = q.reshaped([B, T, NH, HS]), k = k.reshaped([B, T, KVH, HS]), v = v.reshaped([B, T, KVH, HS])
                guard let cache else { return attention(q, k, v, keyMask: attentionMask) }
                cache.store(layer: i, keys: k, values: v)
                return attention(q, cache.keys[i], cache.values[i], keyMask: cache.keyMask, keyLength: cache.length)
            }
        }
        return rmsNorm(h, norm, eps: Float(config.rmsNormEps))  // (B·T, C)
    }

    /// The LM head applied to hidden states [N, C] → logits [N, V].
    public func logits(_ hidden: Tensor) -> Tensor { linear(hidden, lmHead) }

    /// One decoder block on N token rows. `attend` maps the rows' q [N, NH, HS] and k, v
    /// [N, KVH, HS] (RoPE applied) to the attention output; how rows form sequences is its business.
    /// With `packed` (the layer's panel copies, in a decode step) the projections run on them.
    func block(_ layer: DecoderLayer, _ x: Tensor, positions: [Int32], packed: DecodeWeights.Layer? = nil,
               attend: (Tensor, Tensor, Tensor) -> Tensor) -> Tensor {
        let N = x.shape[0], HS = config.headDim
        func project(_ linear: Linear, _ panels: PanelPackedMatrix?, _ input: Tensor) -> Tensor {
            guard let panels else { return self.project(linear, input) }
            let y = panels.product(input)  // the adapter is merged into the panels
            return linear.bias.map { addBias(y, $0) } ?? y
        }
        let a = rmsNorm(x, layer.inputLayernorm, eps: Float(config.rmsNormEps))
        let q = rope(project(layer.qProj, packed?.q, a).reshaped([N, config.numAttentionHeads, HS]), positions: positions, table: ropeTable)
        let k = rope(project(layer.kProj, packed?.k, a).reshaped([N, config.numKeyValueHeads, HS]), positions: positions, table: ropeTable)
        let v = project(layer.vProj, packed?.v, a).reshaped([N, config.numKeyValueHeads, HS])
        let o = attend(q, k, v).reshaped([N, config.numAttentionHeads * HS])
        let h = add(x, project(layer.oProj, packed?.o, o))
        let m = rmsNorm(h, layer.postAttentionLayernorm, eps: Float(config.rmsNormEps))
        return add(h, project(layer.downProj, packed?.down, swiglu(project(layer.gateProj, packed?.gate, m), project(layer.upProj, packed?.up, m))))
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
