import Foundation
import GroveTestSupport
import XCTest
@testable import GroveModel
@testable import GroveTensor

/// DeepSeek-V2/V3 against Hugging Face transformers' own outputs: the shared `model_f_deepseek_v2`
/// (MLA with q_lora_rank, softmax greedy routing) and Grove's `Tests/Fixtures/deepseek` cases
/// (V2-Lite, YaRN with group-limited routing, V3's sigmoid routing with its correction bias,
/// V3 with rotate_half RoPE and YaRN). Tolerance 1e-4 absolute on logits, log-probs and gradients.
final class DeepSeekParityTests: XCTestCase {
    static let variants = ["v2_lite", "v2_yarn_grouped", "v3", "v3_halves_yarn"]
    static func variant(_ name: String) -> URL { Fixtures.local.appendingPathComponent("deepseek").appendingPathComponent(name) }

    func ids(_ list: Any?) -> [Int32] { (list as! [Int]).map(Int32.init) }

    /// d loss / d parameter against transformers' gradients, which hold the routed experts as
    /// `mlp.experts.gate_up_proj` [E, 2I, C] (gate rows, then up rows) and `mlp.experts.down_proj` [E, C, I].
    func checkGradients(_ model: Transformer, reference file: URL, name: String) throws {
        let reference = Dictionary(uniqueKeysWithValues: try SafetensorsFile.read(file))
        var checked = 0
        for (i, layer) in model.layers.enumerated() {
            guard case .mixtureOfExperts(let moe) = layer.mlp else { continue }
            let gateUp = try XCTUnwrap(reference["model.layers.\(i).mlp.experts.gate_up_proj"]).values
            let down = try XCTUnwrap(reference["model.layers.\(i).mlp.experts.down_proj"]).values
            let size = moe.experts[0].gateProj.weight.count
            for (e, expert) in moe.experts.enumerated() {
                for (part, ours, ref) in [("gate", expert.gateProj.weight, gateUp[(2 * e) * size..<(2 * e + 1) * size]),
                                          ("up", expert.upProj.weight, gateUp[(2 * e + 1) * size..<(2 * e + 2) * size]),
                                          ("down", expert.downProj.weight, down[e * size..<(e + 1) * size])] {
                    let grad = ours.gradValues ?? [Float](repeating: 0, count: size)  // an expert no token chose has none
                    XCTAssertLessThan(maxAbsDiff(grad, Array(ref)), 1e-4, "\(name) layer \(i) expert \(e) \(part)")
                    checked += 1
                }
            }
        }
        for (key, p) in model.namedParameters where key != "model.embed_tokens.weight" && key != "lm_head.weight" && !key.contains(".mlp.experts.") {
            let ref = try XCTUnwrap(reference[key], "\(name): \(key)")
            XCTAssertLessThan(maxAbsDiff(try XCTUnwrap(p.gradValues, key), ref.values), 1e-4, "\(name): \(key)")
            checked += 1
        }
        XCTAssertGreaterThan(checked, 20, name)
    }

    // MARK: model_f_deepseek_v2 (shared)

    func testModelFLogitsAndLogProbs() throws {
        let model = try Transformer.load(from: Fixtures.modelF.appendingPathComponent("model"))
        let expected = try Fixtures.json(Fixtures.modelF.appendingPathComponent("expected.json"))
        for s in expected["sequences"] as! [[String: Any]] {
            let tokens = ids(s["input_ids"])
            let reference = try NumpyFile.read(Fixtures.modelF.appendingPathComponent(s["logits_file"] as! String))
            let logits = GradMode.withoutGrad { model.forward(tokens: tokens, batch: 1) }
            XCTAssertEqual(logits.shape, reference.shape)
            XCTAssertLessThan(maxAbsDiff(logits.values, reference.values), 1e-4, "\(s["logits_file"]!)")
            let logp = Array(tokenLogProbs(logits, targets: Array(tokens.dropFirst()) + [-1]).values.dropLast())
            XCTAssertLessThan(maxAbsDiff(logp, (s["next_token_logprobs"] as! [Double]).map(Float.init)), 1e-4)
            XCTAssertEqual(-logp.reduce(0, +) / Float(logp.count), Float(s["mean_nll"] as! Double), accuracy: 1e-4)
        }
        XCTAssertEqual(model.parameterCount, expected["num_parameters"] as! Int)
        XCTAssertEqual(model.config.parameterCount(), expected["num_parameters"] as! Int)
    }

    func testModelFLeftPaddedBatch() throws {
        let model = try Transformer.load(from: Fixtures.modelF.appendingPathComponent("model"))
        let batch = try Fixtures.json(Fixtures.modelF.appendingPathComponent("expected.json"))["left_padded_batch"] as! [String: Any]
        assertLeftPaddedBatchMatches(model, batch)
    }

    func testModelFGreedyContinuation() throws {
        let model = try Transformer.load(from: Fixtures.modelF.appendingPathComponent("model"))
        let greedy = try Fixtures.json(Fixtures.modelF.appendingPathComponent("expected.json"))["greedy"] as! [String: Any]
        let out = model.generate(prompts: [ids(greedy["prompt_ids"])], maxNewTokens: greedy["new_tokens"] as! Int, temperature: 0, seed: 0)
        XCTAssertEqual(out[0].map(Int.init), greedy["output_ids"] as! [Int])
    }

    func testModelFGradients() throws {
        let model = try Transformer.load(from: Fixtures.modelF.appendingPathComponent("model"))
        let expected = try Fixtures.json(Fixtures.modelF.appendingPathComponent("expected.json"))
        let tokens = ids((expected["sequences"] as! [[String: Any]])[2]["input_ids"])
        let loss = crossEntropy(model.forward(tokens: tokens, batch: 1), targets: Array(tokens.dropFirst()) + [-100])
        let gradient = expected["gradient"] as! [String: Any]
        XCTAssertEqual(loss.item, Float(gradient["loss_value"] as! Double), accuracy: 1e-4)
        loss.backward()
        try checkGradients(model, reference: Fixtures.modelF.appendingPathComponent("grads.safetensors"), name: "model_f")
        // The embeddings and head are not in the file (size limit): their norms are.
        let norms = gradient["grad_norms"] as! [String: Double]
        for (key, p) in model.namedParameters where key == "model.embed_tokens.weight" || key == "lm_head.weight" {
            let norm = (p.gradValues!.reduce(0.0) { $0 + Double($1) * Double($1) }).squareRoot()
            XCTAssertEqual(norm, norms[key]!, accuracy: 1e-4, key)
        }
    }

    // MARK: Grove's own DeepSeek cases

    func testVariantsMatchTransformers() throws {
        for name in Self.variants {
            let dir = Self.variant(name)
            let expected = try Fixtures.json(dir.appendingPathComponent("expected.json"))
            let model = try Transformer.load(from: dir.appendingPathComponent("model"))
            let tokens = ids(expected["input_ids"])
            let logits = model.forward(tokens: tokens, batch: 1)
            XCTAssertLessThan(maxAbsDiff(logits.values, try NumpyFile.read(dir.appendingPathComponent("logits.npy")).values), 1e-4, name)
            let loss = crossEntropy(logits, targets: Array(tokens.dropFirst()) + [-100])
            XCTAssertEqual(loss.item, Float(expected["loss_value"] as! Double), accuracy: 1e-4, name)
            loss.backward()
            try checkGradients(model, reference: dir.appendingPathComponent("grads.safetensors"), name: name)
            let out = model.generate(prompts: [ids(expected["prompt_ids"])], maxNewTokens: (expected["greedy_output_ids"] as! [Int]).count, temperature: 0, seed: 0)
            XCTAssertEqual(out[0].map(Int.init), expected["greedy_output_ids"] as! [Int], name)
            XCTAssertEqual(model.parameterCount, expected["num_parameters"] as! Int, name)
            XCTAssertEqual(model.config.parameterCount(), expected["num_parameters"] as! Int, name)
        }
    }

    func testVariantConfigsAreRead() throws {
        let lite = try ModelConfig.load(from: Self.variant("v2_lite").appendingPathComponent("model"))
        guard case .latent(let latent) = lite.attention, case .mixtureOfExperts(let moe) = lite.feedForward else { return XCTFail("v2_lite kinds") }
        XCTAssertNil(latent.qLoraRank)
        XCTAssertEqual([latent.kvLoraRank, latent.qkNopeHeadDim, latent.qkRopeHeadDim, latent.vHeadDim], [12, 8, 4, 12])
        XCTAssertEqual(lite.headDim, 4)
        XCTAssertEqual(moe, MixtureOfExpertsConfig(firstKDenseReplace: 1, moeIntermediateSize: 16, nSharedExperts: 2, nRoutedExperts: 6,
                                                   numExpertsPerTok: 3, selection: .greedy, normTopkProb: false, routedScalingFactor: 1.5))
        let yarn = try ModelConfig.load(from: Self.variant("v2_yarn_grouped").appendingPathComponent("model"))
        XCTAssertEqual(yarn.ropeScaling, .yarn(factor: 4, originalMaxPositionEmbeddings: 64, betaFast: 32, betaSlow: 1, mscale: 1,
                                               mscaleAllDim: 0.8, attentionFactor: nil, truncate: true))
        guard case .mixtureOfExperts(let grouped) = yarn.feedForward else { return XCTFail("v2_yarn_grouped kinds") }
        XCTAssertEqual(grouped.selection, .groupLimited(groups: 4, topGroups: 2))
        let v3 = try ModelConfig.load(from: Self.variant("v3").appendingPathComponent("model"))
        guard case .mixtureOfExperts(let routed) = v3.feedForward else { return XCTFail("v3 kinds") }
        XCTAssertEqual(routed.selection, .biasCorrected(groups: 4, topGroups: 2))
        XCTAssertTrue(routed.normTopkProb)
        XCTAssertEqual(routed.routedScalingFactor, 2.5)
    }

    /// A fresh model from a config (what a recipe's `model:` section makes) saves as a folder that loads
    /// back to the same logits, with its config.json round-tripping.
    func testFreshModelSavesAndLoads() throws {
        for name in ["v2_yarn_grouped", "v3"] {
            let config = try ModelConfig.load(from: Self.variant(name).appendingPathComponent("model"))
            let model = Transformer(config: config, seed: 7)
            let dir = Fixtures.temporaryDirectory()
            try model.save(to: dir)
            let loaded = try Transformer.load(from: dir)
            XCTAssertEqual(loaded.config, config, name)
            let tokens: [Int32] = [5, 9, 17, 3, 8, 21]
            let (a, b) = GradMode.withoutGrad { (model.forward(tokens: tokens, batch: 1), loaded.forward(tokens: tokens, batch: 1)) }
            XCTAssertEqual(a.values, b.values, name)
            XCTAssertEqual(Set(loaded.namedParameters.map(\.0) + loaded.namedBuffers.map(\.0)),
                           Set(try SafetensorsFile.read(Self.variant(name).appendingPathComponent("model/model.safetensors")).map(\.0)), name)
        }
    }

    /// The latent cache holds r + dr floats per token and layer, the expanded one NH·(dn + dr + dv); both
    /// give the full forward pass's logits (1e-4), and sampling from either draws the same tokens.
    func testLatentCacheSamplesTheTokensOfTheExpandedCache() throws {
        for name in Self.variants + ["model_f"] {
            let dir = name == "model_f" ? Fixtures.modelF.appendingPathComponent("model") : Self.variant(name).appendingPathComponent("model")
            let model = try Transformer.load(from: dir)
            guard case .latent(let c) = model.config.attention else { return XCTFail(name) }
            let L = model.config.numHiddenLayers, NH = model.config.numAttentionHeads
            XCTAssertEqual(KVCache(config: model.config, batch: 1, capacity: 4).bytesPerToken, 4 * L * (c.kvLoraRank + c.qkRopeHeadDim), name)
            XCTAssertEqual(KVCache(config: model.config, batch: 1, capacity: 4, layout: .keysAndValues).bytesPerToken,
                           4 * L * NH * (c.qkHeadDim + c.vHeadDim), name)
            let prompts: [[Int32]] = [[5, 9, 17, 3], [7, 2], [5, 9, 17, 3], [11, 4, 6, 8, 10, 12]]
            let options = SamplingOptions(temperature: 1, maxNewTokens: 12)
            let rngs = prompts.indices.map { SeededRandom(seed: 3, streams: [UInt64($0)]) }
            let latent = model.generate(prompts: prompts, options: options, rngs: rngs)
            model.decodeCacheLayout = .keysAndValues
            let expanded = model.generate(prompts: prompts, options: options, rngs: rngs)
            for (a, b) in zip(latent, expanded) {
                XCTAssertEqual(a.tokens, b.tokens, name)
                for (x, y) in zip(a.logprobs, b.logprobs) { XCTAssertEqual(x, y, accuracy: 1e-4, name) }
            }
        }
    }

    /// LoRA on latent attention and the shared experts (every adaptable linear layer): a fresh adapter
    /// changes nothing; a trained one (B ≠ 0) decodes from the latent cache, W_UK and W_UV merged,
    /// to the logits of the full forward pass.
    func testLoRAOnLatentAttention() throws {
        let model = try Transformer.load(from: Fixtures.modelF.appendingPathComponent("model"))
        let tokens: [Int32] = [5, 9, 17, 3, 8, 21, 4]
        let base = GradMode.withoutGrad { model.forward(tokens: tokens, batch: 1) }
        model.addAdapter(try LoRAConfig(r: 2, alpha: 4, targetModules: LoRAConfig.allLinear + LoRAConfig.latentAttentionLinear), seed: 1)
        XCTAssertEqual(Set(model.adapterParameters.map { $0.0.components(separatedBy: ".").dropLast(2).last! }),  // "….kv_b_proj.lora_A.weight"
                       ["q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
        XCTAssertEqual(GradMode.withoutGrad { model.forward(tokens: tokens, batch: 1) }.values, base.values)
        var rng = SeededRandom(seed: 2)
        for (name, t) in model.adapterParameters where name.hasSuffix("lora_B.weight") {
            for i in 0..<t.count { t.data[i] = rng.normal() * 0.2 }
        }
        GradMode.withoutGrad {
            let full = model.forward(tokens: tokens, batch: 1)
            XCTAssertGreaterThan(maxAbsDiff(full.values, base.values), 1e-2, "the adapter changes the model")
            let cache = KVCache(config: model.config, batch: 1, capacity: tokens.count)
            let prefill = model.forward(tokens: Array(tokens.prefix(3)), batch: 1, cache: cache)
            var cached = prefill.values
            for t in 3..<tokens.count { cached += model.forward(tokens: [tokens[t]], batch: 1, cache: cache).values }
            XCTAssertLessThan(maxAbsDiff(cached, full.values), 1e-4)
        }
    }

    func testBadDeepSeekConfigsNameTheKey() throws {
        let base = try Fixtures.json(Self.variant("v3").appendingPathComponent("model/config.json"))
        for (key, value, expected) in [("n_group", 3 as Any, "n_group"), ("topk_group", 5, "topk_group"), ("num_experts_per_tok", 9, "num_experts_per_tok"),
                                       ("qk_rope_head_dim", 5, "qk_rope_head_dim"), ("kv_lora_rank", NSNull(), "kv_lora_rank")] {
            var json = base
            json[key] = value
            XCTAssertThrowsError(try ModelConfig(json: json, file: "dir/config.json")) { error in
                XCTAssertTrue("\(error)".contains("'\(expected)'") || "\(error)".contains("key '\(expected)'"), "\(key): \(error)")
            }
        }
        var json = try Fixtures.json(Self.variant("v2_lite").appendingPathComponent("model/config.json"))
        json["topk_method"] = "noaux_tc"
        XCTAssertThrowsError(try ModelConfig(json: json, file: "dir/config.json")) { XCTAssertTrue("\($0)".contains("topk_method"), "\($0)") }
    }
}
