import Foundation
import GroveTensor

/// LoRA's settings, named as PEFT's `LoraConfig` names them (Hu et al. 2021): each targeted
/// linear layer computes W x + s · B(A(dropout(x))) with A [r, in], B [out, r] trainable and
/// the base W frozen; s = alpha / r, or alpha / √r with rsLoRA (Kalajdzievski 2023).
public struct LoRAConfig: Equatable {
    public var r: Int
    public var alpha: Double
    public var dropout: Double
    /// PEFT's module names (q_proj … down_proj), sorted.
    public var targetModules: [String]
    public var useRslora: Bool

    /// Every linear layer of a Llama/Qwen2 decoder block (PEFT's "all-linear": all but the LM head).
    public static let allLinear = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    /// DeepSeek's latent-attention projections, adapted when named (DeepSeekMoE's routed experts are
    /// not `nn.Linear` layers and are never adapted; its shared experts are `gate_proj` … `down_proj`).
    public static let latentAttentionLinear = ["q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj"]

    /// `targetModules`: PEFT module names or ["all-linear"]; throws `LoRAConfig.Invalid` for
    /// anything else (the LM head and the embedding are not adapted).
    public init(r: Int, alpha: Double, dropout: Double = 0, targetModules: [String] = ["all-linear"], useRslora: Bool = false) throws {
        guard r > 0 else { throw Invalid(key: "r", problem: "must be positive, found \(r)") }
        guard alpha.isFinite, alpha > 0 else { throw Invalid(key: "lora_alpha", problem: "must be positive, found \(alpha)") }
        guard (0..<1).contains(dropout) else { throw Invalid(key: "lora_dropout", problem: "must be in [0, 1), found \(dropout)") }
        let names = targetModules == ["all-linear"] ? LoRAConfig.allLinear : targetModules
        let known = LoRAConfig.allLinear + LoRAConfig.latentAttentionLinear
        if let bad = names.first(where: { !known.contains($0) }) {
            throw Invalid(key: "target_modules", problem: "'\(bad)' is not a linear layer of a decoder block; use \(known.joined(separator: ", ")) or all-linear")
        }
        guard !names.isEmpty else { throw Invalid(key: "target_modules", problem: "names no module") }
        self.r = r; self.alpha = alpha; self.dropout = dropout
        self.targetModules = Array(Set(names)).sorted()
        self.useRslora = useRslora
    }

    /// s = alpha / r, or alpha / √r with rsLoRA.
    public var scale: Float { Float(useRslora ? alpha / Double(r).squareRoot() : alpha / Double(r)) }

    /// A setting that is not LoRA's.
    public struct Invalid: Error, CustomStringConvertible {
        public let key: String, problem: String
        public var description: String { "\(key): \(problem)" }
    }
}

/// One linear layer's low-rank pair: A [r, in], B [out, r].
public struct LowRank {
    public let a: Tensor
    public let b: Tensor
}

extension Transformer {
    /// Adds a fresh adapter on `config.targetModules` with PEFT's initialisation, A kaiming-uniform
    /// with a = √5 (bound gain·√(3 / in) = 1/√in) and B = 0, so the model is unchanged until
    /// trained; freezes every base weight (no gradient, not in `parameters`).
    public func addAdapter(_ config: LoRAConfig, seed: UInt64) {
        precondition(adapter == nil, "addAdapter: the model already has an adapter")
        var rng = SeededRandom(seed: seed)
        for (_, p) in namedParameters { p.requireGrad(false); p.dropGrad() }
        for i in layers.indices {
            for (name, path) in layers[i].projections where config.targetModules.contains(Transformer.moduleName(name)) {
                let w = layers[i][keyPath: path].weight, out = w.shape[0], inp = w.shape[1]
                let bound = 1 / Float(inp).squareRoot()
                let a = Tensor((0..<config.r * inp).map { _ in (2 * rng.uniform() - 1) * bound }, shape: [config.r, inp], requiresGrad: true)
                layers[i][keyPath: path].lora = LowRank(a: a, b: Tensor(zeros: [out, config.r], requiresGrad: true))
            }
        }
        adapter = config
        adapterEnabled = true
        dropoutSeed = seed
        seedDropout(step: 0)
    }

    /// Restarts the dropout masks' generator for training step `step` (stream `step` of
    /// `dropoutSeed`), so that a resumed run draws the masks the uninterrupted one did.
    public func seedDropout(step: Int) { dropoutRNG = SeededRandom(seed: dropoutSeed, streams: [UInt64(step)]) }

    /// The adapter's matrices under PEFT's parameter names without its `base_model.model.` prefix
    /// and adapter name: `model.layers.0.self_attn.q_proj.lora_A.weight`, in layer order.
    public var adapterParameters: [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        for (i, layer) in layers.enumerated() {
            for (name, path) in layer.projections {
                guard let lora = layer[keyPath: path].lora else { continue }
                out.append(("model.layers.\(i).\(name).lora_A.weight", lora.a))
                out.append(("model.layers.\(i).\(name).lora_B.weight", lora.b))
            }
        }
        return out
    }

    /// Runs `body` on the base model: the adapter switched off (GRPO's reference policy).
    public func withAdapterDisabled<R>(_ body: () throws -> R) rethrows -> R {
        let previous = adapterEnabled
        adapterEnabled = false
        defer { adapterEnabled = previous }
        return try body()
    }

    /// W + s·B·A: a linear layer's weight with its adapter merged in (its weight when it has none).
    func mergedWeight(_ linear: Linear) -> Tensor {
        guard let lora = linear.lora, let adapter else { return linear.weight }
        let w = linear.weight.detached(), out = w.shape[0], inp = w.shape[1], r = lora.a.shape[0]
        BLAS.shared.sgemm(.none, .none, m: out, n: inp, k: r, alpha: adapter.scale, a: lora.b.data, lda: r,
                          b: lora.a.data, ldb: inp, beta: 1, c: w.data, ldc: inp)
        return w
    }

    /// Folds the adapter into the base weights, W ← W + s·B·A, and removes it: the model is then
    /// a plain model that computes what base + adapter did (PEFT's `merge_and_unload`).
    public func mergeAdapter() {
        guard adapter != nil else { return }
        for i in layers.indices {
            for (_, path) in layers[i].projections where layers[i][keyPath: path].lora != nil {
                layers[i][keyPath: path].weight.copy(from: mergedWeight(layers[i][keyPath: path]))
                layers[i][keyPath: path].lora = nil
            }
        }
        adapter = nil
    }

    /// One projection through its adapter when the adapter is on: `loraLinear` (dropout on the
    /// low-rank input only in training: recording gradients, or a checkpointed block's forward), else the plain layer.
    func project(_ linear: Linear, _ x: Tensor) -> Tensor {
        guard adapterEnabled, let lora = linear.lora, let adapter else { return linear(x) }
        let training = GradMode.isEnabled || inCheckpointedForward
        let dropped = adapter.dropout > 0 && training ? dropout(x, p: Float(adapter.dropout), rng: &dropoutRNG) : nil
        return loraLinear(x, linear.weight, linear.bias, a: lora.a, b: lora.b, scale: adapter.scale, lowRankInput: dropped)
    }

    /// PEFT's module name of a projection path (`self_attn.q_proj` → `q_proj`).
    static func moduleName(_ path: String) -> String { String(path.split(separator: ".").last!) }
}
