import Foundation
import GroveTensor

/// llama.cpp's names for a Llama or Qwen2 model: the metadata keys under the architecture's
/// prefix (`llama.block_count`, …) and the tensor names (`blk.N.attn_q.weight`, …).
enum GGUFNames {
    /// llama.cpp's per-layer tensor names and Hugging Face's, after `blk.N.` / `model.layers.N.`.
    static let layer: [(gguf: String, hf: String)] = [
        ("attn_norm", "input_layernorm"), ("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"),
        ("attn_v", "self_attn.v_proj"), ("attn_output", "self_attn.o_proj"), ("ffn_norm", "post_attention_layernorm"),
        ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"), ("ffn_down", "mlp.down_proj"),
    ]
    static let global: [(gguf: String, hf: String)] = [
        ("token_embd", "model.embed_tokens"), ("output_norm", "model.norm"), ("output", "lm_head"),
    ]

    /// The Hugging Face name of a GGUF tensor name, nil if it is not a Llama/Qwen2 weight.
    static func hfName(_ name: String) -> String? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard let suffix = parts.last, suffix == "weight" || suffix == "bias" else { return nil }
        if parts.count == 2, let g = global.first(where: { $0.gguf == parts[0] }) { return "\(g.hf).\(suffix)" }
        if parts.count == 4, parts[0] == "blk", let i = Int(parts[1]), i >= 0, String(i) == parts[1],
           let l = layer.first(where: { $0.gguf == parts[2] }) {
            return "model.layers.\(i).\(l.hf).\(suffix)"
        }
        return nil
    }

    /// The GGUF tensor name of a Hugging Face parameter name (every name `Transformer` uses).
    static func ggufName(_ name: String) -> String {
        let parts = name.split(separator: ".").map(String.init)
        let suffix = parts.last!
        let stem = parts.dropLast().joined(separator: ".")
        if let g = global.first(where: { $0.hf == stem }) { return "\(g.gguf).\(suffix)" }
        let i = parts[2], rest = parts[3..<parts.count - 1].joined(separator: ".")
        return "blk.\(i).\(layer.first { $0.hf == rest }!.gguf).\(suffix)"
    }
}

/// llama.cpp's Llama converter reorders the rows of q_proj and k_proj (weights and biases)
/// within each head from Hugging Face's rotate-half RoPE layout to the interleaved one: HF row
/// (h, i, j) of a head's [2, HS/2] rows becomes GGUF row (h, j, i). `toGGUF` false undoes it
/// (transformers' `reverse_permute`).
func permuteRoPERows(_ t: Tensor, heads: Int, toGGUF: Bool) -> Tensor {
    let rows = t.shape[0], cols = t.count / rows, half = rows / heads / 2
    let out = Tensor(zeros: t.shape)
    for h in 0..<heads {
        for i in 0..<2 {
            for j in 0..<half {
                let hf = h * 2 * half + i * half + j, gguf = h * 2 * half + j * 2 + i
                let (from, to) = toGGUF ? (hf, gguf) : (gguf, hf)
                (out.data + to * cols).update(from: t.data + from * cols, count: cols)
            }
        }
    }
    return out
}

extension ModelConfig {
    /// The configuration a GGUF file's metadata describes (`general.architecture` llama or qwen2).
    public init(gguf file: GGUFFile) throws {
        let path = file.path
        guard let arch = file["general.architecture"]?.string else {
            throw ModelError.badConfig(file: path, key: "general.architecture", problem: "missing")
        }
        guard let modelType = ModelType(rawValue: arch) else {
            throw ModelError.unsupported(file: path, key: "general.architecture", value: arch, supported: "llama, qwen2")
        }
        func int(_ key: String) throws -> Int? {
            guard let v = file["\(arch).\(key)"] else { return nil }
            guard let n = v.int else { throw ModelError.badConfig(file: path, key: "\(arch).\(key)", problem: "expected an integer, found \(v)") }
            return n
        }
        func double(_ key: String) throws -> Double? {
            guard let v = file["\(arch).\(key)"] else { return nil }
            guard let x = v.double else { throw ModelError.badConfig(file: path, key: "\(arch).\(key)", problem: "expected a number, found \(v)") }
            return x
        }
        func required(_ key: String) throws -> Int {
            guard let n = try int(key) else { throw ModelError.badConfig(file: path, key: "\(arch).\(key)", problem: "missing") }
            return n
        }
        if let scaling = file["\(arch).rope.scaling.type"]?.string, scaling != "none" {
            throw ModelError.unsupported(file: path, key: "\(arch).rope.scaling.type", value: scaling, supported: "none")
        }
        let hidden = try required("embedding_length"), heads = try required("attention.head_count")
        // The vocabulary: the token list, else the key, else the embedding's rows.
        let vocabKey = try int("vocab_size")
        guard let vocab = file["tokenizer.ggml.tokens"]?.array?.count ?? vocabKey ?? file.info("token_embd.weight")?.dims.last else { throw ModelError.badConfig(file: path, key: "tokenizer.ggml.tokens", problem: "missing, and no token_embd.weight") }
        let eos = file["tokenizer.ggml.eos_token_id"]?.int
        self.init(modelType: modelType, vocabSize: vocab, hiddenSize: hidden,
                  intermediateSize: try required("feed_forward_length"),
                  numHiddenLayers: try required("block_count"),
                  numAttentionHeads: heads,
                  numKeyValueHeads: try int("attention.head_count_kv"),
                  headDim: try int("attention.key_length"),
                  rmsNormEps: try double("attention.layer_norm_rms_epsilon") ?? 1e-6,
                  ropeTheta: try double("rope.freq_base") ?? 10_000,
                  maxPositionEmbeddings: try int("context_length") ?? 2048,
                  tieWordEmbeddings: file.info("output.weight") == nil,
                  attentionBias: modelType == .llama && file.info("blk.0.attn_q.bias") != nil,
                  bosTokenId: file["tokenizer.ggml.bos_token_id"]?.int,
                  eosTokenIds: eos.map { [$0] } ?? [],
                  padTokenId: file["tokenizer.ggml.padding_token_id"]?.int)
        if let rotary = try int("rope.dimension_count"), rotary != headDim {
            throw ModelError.unsupported(file: path, key: "\(arch).rope.dimension_count", value: "\(rotary)", supported: "the head size \(headDim)")
        }
        try validate(file: path)
    }
}

extension Transformer {
    /// Loads a GGUF file: the configuration from its metadata, every tensor dequantised to
    /// float32 under its Hugging Face name (Llama's q/k rows put back in HF order).
    public static func load(gguf url: URL) throws -> Transformer {
        let file = try GGUFFile(url)
        let config = try ModelConfig(gguf: file)
        try checkSizes(file, config)
        var weights: [String: (tensor: Tensor, file: String)] = [:]
        for info in file.tensors {
            guard let name = GGUFNames.hfName(info.name) else { throw ModelError.unexpectedTensor(file: file.path, tensor: info.name) }
            var t = file.tensor(info)
            if config.modelType == .llama && (info.name.contains(".attn_q.") || info.name.contains(".attn_k.")) {
                let heads = info.name.contains(".attn_q.") ? config.numAttentionHeads : config.numKeyValueHeads
                guard t.shape[0] % (2 * heads) == 0 else {
                    throw ModelError.shapeMismatch(file: file.path, tensor: info.name, expected: [heads * config.headDim], found: t.shape)
                }
                t = permuteRoPERows(t, heads: heads, toGGUF: false)
            }
            weights[name] = (t, file.path)
        }
        let model = Transformer(config: config, seed: 0)
        try model.loadWeights(weights, folder: file.path)
        return model
    }

    /// The metadata's sizes against the largest tensors and the layer count, before a model of
    /// those sizes is allocated (every shape is checked again when the weights are copied).
    static func checkSizes(_ file: GGUFFile, _ c: ModelConfig) throws {
        for (name, shape) in [("token_embd.weight", [c.vocabSize, c.hiddenSize]), ("blk.0.ffn_up.weight", [c.intermediateSize, c.hiddenSize]),
                              ("blk.0.attn_q.weight", [c.numAttentionHeads * c.headDim, c.hiddenSize])] {
            guard let info = file.info(name) else { throw ModelError.missingTensor(file: file.path, tensor: name) }
            guard info.shape == shape else { throw ModelError.shapeMismatch(file: file.path, tensor: name, expected: shape, found: info.shape) }
        }
        let layers = Set(file.tensors.compactMap { t in t.name.hasPrefix("blk.") ? t.name.split(separator: ".")[1] : nil })
        guard layers.count == c.numHiddenLayers else {
            throw ModelError.badConfig(file: file.path, key: "\(c.modelType.rawValue).block_count",
                                       problem: "\(c.numHiddenLayers), but the file holds tensors of \(layers.count) layers")
        }
    }
}
