import Foundation
import GroveTestSupport
import XCTest
@testable import GroveData
@testable import GroveModel
@testable import GroveRollout
@testable import GroveTensor
@testable import GroveTokenizer
@testable import GroveTrain

/// GRPO on a toy task, judged on behaviour: rewards rise, failures are loud.
final class GRPOTrainerTests: XCTestCase {
    /// Reward 1 when the completion starts with "7".
    struct StartsWithSeven: Reward {
        let name = "seven"
        func score(_ batch: [RewardInput]) throws -> RewardOutput { RewardOutput(values: batch.map { $0.completion.hasPrefix("7") ? 1 : 0 }) }
    }

    struct Exploding: Reward {
        let name = "boom"
        func score(_ batch: [RewardInput]) throws -> RewardOutput { throw RewardError(reward: name, message: "exploded") }
    }

    func trainer(rewards: [Reward], steps: Int, dynamic: Int = 0) throws -> GRPOTrainer {
        let url = Fixtures.temporaryDirectory().appendingPathComponent("prompts.jsonl")
        try (0..<20).map { "{\"prompt\": \"\($0)=\", \"completion\": \"x\"}" }.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
        let tok = try Tokenizer.train(corpus: ["0123456789="], vocabSize: 262, specialTokens: ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        let config = ModelConfig(vocabSize: tok.vocabSize, hiddenSize: 16, intermediateSize: 32, numHiddenLayers: 1,
                                 numAttentionHeads: 2, numKeyValueHeads: 1, maxPositionEmbeddings: 32)
        let file = try JSONLFile(url: url)
        let stream = TrainingStream(file: file, rows: Array(0..<file.count), format: .promptCompletion, tokenizer: tok, maxLength: 32, seed: 1)
        var grpo = GRPOConfig(steps: steps, promptsPerStep: 4, groupSize: 8, sampling: SamplingOptions(temperature: 1, maxNewTokens: 2),
                              loss: GRPOLossConfig(beta: 0.04, aggregation: .perToken), learningRate: 3e-2)
        grpo.dynamicSamplingRounds = dynamic
        return GRPOTrainer(policy: Transformer(config: config, seed: 2), tokenizer: tok, prompts: stream,
                           rewards: WeightedRewards(rewards.map { ($0, 1.0) }), config: grpo, seed: 5)
    }

    func testRewardRises() throws {
        let t = try trainer(rewards: [StartsWithSeven()], steps: 40, dynamic: 2)
        var rewards: [Double] = [], stored = 0
        try t.train { event in
            if case .step(_, _, let m) = event { rewards.append(m.first { $0.0 == "reward" }!.1) }
            if case .rollouts(_, let records) = event { stored += records.count }
        }
        let early = rewards.prefix(5).reduce(0, +) / 5, late = rewards.suffix(5).reduce(0, +) / 5
        XCTAssertLessThan(early, 0.3, "a random policy rarely starts with 7")
        XCTAssertGreaterThan(late, 0.8, "GRPO teaches it to")
        XCTAssertGreaterThan(stored, 0)
        XCTAssertNotNil(t.reference, "β > 0 keeps a reference model")
    }

    func testSameSeedSameRollouts() throws {
        func texts() throws -> [String] {
            var out: [String] = []
            try trainer(rewards: [StartsWithSeven()], steps: 2).train { if case .rollouts(_, let r) = $0 { out += r.map(\.completion.text) } }
            return out
        }
        XCTAssertEqual(try texts(), try texts())
    }

    func testRewardErrorStopsTheStep() throws {
        let t = try trainer(rewards: [Exploding()], steps: 3)
        let before = t.policy.embedTokens.values
        XCTAssertThrowsError(try t.train { _ in }) { XCTAssertTrue("\($0)".contains("exploded"), "\($0)") }
        XCTAssertEqual(t.policy.embedTokens.values, before)
        XCTAssertEqual(t.step, 0)
    }
}
