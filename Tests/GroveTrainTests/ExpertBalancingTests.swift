import Foundation
import GroveTestSupport
import XCTest
@testable import GroveData
@testable import GroveModel
@testable import GroveTensor
@testable import GroveTokenizer
@testable import GroveTrain

/// DeepSeekMoE in training: per-step expert loads in the metrics, DeepSeek-V2's balance loss (α)
/// and DeepSeek-V3's bias update (γ).
final class ExpertBalancingTests: XCTestCase {
    func tokenizer() throws -> Tokenizer { try Tokenizer.train(corpus: ["0123456789+="], vocabSize: 262, specialTokens: ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) }

    /// A tiny DeepSeek: 2 layers, the second DeepSeekMoE with 8 routed experts, top-2.
    func config(_ type: ModelConfig.ModelType, vocab: Int) -> ModelConfig {
        let latent = LatentAttentionConfig(qLoraRank: nil, kvLoraRank: 8, qkNopeHeadDim: 8, qkRopeHeadDim: 4, vHeadDim: 8)
        let selection: ExpertSelection = type == .deepseekV3 ? .biasCorrected(groups: 2, topGroups: 2) : .greedy
        let moe = MixtureOfExpertsConfig(firstKDenseReplace: 1, moeIntermediateSize: 8, nSharedExperts: 1, nRoutedExperts: 8,
                                         numExpertsPerTok: 2, selection: selection, normTopkProb: type == .deepseekV3)
        return ModelConfig(modelType: type, vocabSize: vocab, hiddenSize: 16, intermediateSize: 32, numHiddenLayers: 2, numAttentionHeads: 2,
                           maxPositionEmbeddings: 32, initializerRange: 0.3, attention: .latent(latent), feedForward: .mixtureOfExperts(moe))
    }

    func trainer(_ model: Transformer, _ tok: Tokenizer, steps: Int, balancing: ExpertBalancing) throws -> SFTTrainer {
        let url = Fixtures.temporaryDirectory().appendingPathComponent("train.jsonl")
        let lines = (0..<64).map { "{\"prompt\": \"\($0 % 10)+\($0 / 10 % 10)=\", \"completion\": \"\($0 % 10 + $0 / 10 % 10)\"}" }
        try lines.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
        let file = try JSONLFile(url: url)
        let stream = TrainingStream(file: file, rows: Array(0..<file.count), format: .promptCompletion, tokenizer: tok, maxLength: 16, seed: 3)
        var config = SFTConfig(steps: steps, batchSize: 8, microBatchSize: 8, learningRate: 1e-2)
        config.expertBalancing = balancing
        return SFTTrainer(model: model, data: stream, config: config)
    }

    func metrics(_ t: SFTTrainer) throws -> [[String: Double]] {
        var out: [[String: Double]] = []
        try t.train { if case .step(let r) = $0 { out.append(Dictionary(r.metrics.named, uniquingKeysWith: { a, _ in a })) } }
        return out
    }

    /// Every training token goes to K experts, so the mean load is tokens·K/E; the balance loss drives the
    /// routing toward even loads: after 40 steps max/mean is lower with α than without.
    func testLoadsAndBalanceLoss() throws {
        let tok = try tokenizer()
        let plain = try metrics(trainer(Transformer(config: config(.deepseekV2, vocab: tok.vocabSize), seed: 4), tok, steps: 40, balancing: ExpertBalancing()))
        let first = plain[0]
        let mean = try XCTUnwrap(first["train/moe/layer_1/mean_tokens_per_expert"])
        XCTAssertNil(first["train/moe/layer_0/mean_tokens_per_expert"], "layer 0 is dense")
        XCTAssertEqual(mean * 8, Double(Int(mean * 8)), "a whole number of routed tokens")
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(first["train/moe/layer_1/max_tokens_per_expert"]), mean)
        let balanced = try metrics(trainer(Transformer(config: config(.deepseekV2, vocab: tok.vocabSize), seed: 4), tok, steps: 40,
                                           balancing: ExpertBalancing(alpha: 0.3)))
        XCTAssertEqual(balanced[0]["train/moe/max_over_mean"], plain[0]["train/moe/max_over_mean"], "the same routing before the first update")
        func late(_ m: [[String: Double]]) -> Double { m.suffix(10).map { $0["train/moe/max_over_mean"]! }.reduce(0, +) / 10 }
        XCTAssertLessThan(late(balanced), late(plain))
    }

    /// γ: after each step an overloaded expert's bias falls by γ and an underloaded one's rises by γ.
    func testBiasUpdate() throws {
        let tok = try tokenizer()
        let model = Transformer(config: config(.deepseekV3, vocab: tok.vocabSize), seed: 4)
        guard case .mixtureOfExperts(let moe) = model.layers[1].mlp, let bias = moe.eScoreCorrectionBias else { return XCTFail("V3 MoE layer") }
        var loads: [ExpertLoad] = []
        let t = try trainer(model, tok, steps: 1, balancing: ExpertBalancing(gamma: 0.01))
        try t.train { if case .step(let r) = $0 { loads = (r.metrics as! SFTStepMetrics).expertLoads } }
        let load = try XCTUnwrap(loads.first)
        XCTAssertEqual(load.layer, 1)
        for (e, n) in load.tokensPerExpert.enumerated() {
            let expected: Float = Double(n) > load.mean ? -0.01 : Double(n) < load.mean ? 0.01 : 0
            XCTAssertEqual(bias.data[e], expected, "expert \(e) with \(n) tokens, mean \(load.mean)")
        }
        XCTAssertFalse(model.parameters.contains { $0 === bias }, "the optimizer does not train the bias")
    }
}
