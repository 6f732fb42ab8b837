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

    func trainer(rewards: [Reward], steps: Int, dynamic: Int = 0, microBatchTokens: Int = 4096, beta: Double = 0.04,
                 lora: LoRAConfig? = nil) throws -> GRPOTrainer {
        let url = Fixtures.temporaryDirectory().appendingPathComponent("prompts.jsonl")
        try (0..<20).map { "{\"prompt\": \"\($0)=\", \"completion\": \"x\"}" }.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
        let tok = try Tokenizer.train(corpus: ["0123456789="], vocabSize: 262, specialTokens: ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        let config = ModelConfig(vocabSize: tok.vocabSize, hiddenSize: 16, intermediateSize: 32, numHiddenLayers: 1,
                                 numAttentionHeads: 2, numKeyValueHeads: 1, maxPositionEmbeddings: 32)
        let file = try JSONLFile(url: url)
        let stream = TrainingStream(file: file, rows: Array(0..<file.count), format: .promptCompletion, tokenizer: tok, maxLength: 32, seed: 1)
        var grpo = GRPOConfig(steps: steps, promptsPerStep: 4, groupSize: 8, sampling: SamplingOptions(temperature: 1, maxNewTokens: 2),
                              loss: GRPOLossConfig(beta: beta, aggregation: .perToken), learningRate: 3e-2)
        grpo.dynamicSamplingRounds = dynamic
        grpo.microBatchTokens = microBatchTokens
        let policy = Transformer(config: config, seed: 2)
        if let lora { policy.addAdapter(lora, seed: 4) }
        return GRPOTrainer(policy: policy, tokenizer: tok, prompts: stream,
                           rewards: WeightedRewards(rewards.map { ($0, 1.0) }), config: grpo, seed: 5)
    }

    func testRewardRises() throws {
        let t = try trainer(rewards: [StartsWithSeven()], steps: 40, dynamic: 2)
        var rewards: [Double] = [], stored = 0
        try t.train { event in
            if case .step(let report) = event {
                rewards.append((report.metrics as! GRPOStepMetrics).reward)
                stored += report.rollouts.count
            }
        }
        let early = rewards.prefix(5).reduce(0, +) / 5, late = rewards.suffix(5).reduce(0, +) / 5
        XCTAssertLessThan(early, 0.3, "a random policy rarely starts with 7")
        XCTAssertGreaterThan(late, 0.8, "GRPO teaches it to")
        XCTAssertGreaterThan(stored, 0)
        XCTAssertNotNil(t.reference, "β > 0 keeps a reference model")
    }

    /// With LoRA only the adapter trains, and the reference is the base (the adapter off), not a
    /// copy: the KL is 0 while B is still 0 (the first step) and grows once the adapter has moved.
    func testLoRATrainsTheAdapterAgainstTheBase() throws {
        let t = try trainer(rewards: [StartsWithSeven()], steps: 4, dynamic: 3, lora: try LoRAConfig(r: 2, alpha: 4))
        XCTAssertNil(t.reference, "no second copy of the model")
        XCTAssertEqual(t.optimizer.parameters.count, 2 * 7)
        let base = t.policy.namedParameters.map(\.1.values)
        var kl: [Double] = []
        try t.train { if case .step(let report) = $0 { kl.append((report.metrics as! GRPOStepMetrics).kl) } }
        XCTAssertEqual(t.policy.namedParameters.map(\.1.values), base, "the base is frozen")
        XCTAssertTrue(t.policy.adapterParameters.filter { $0.0.contains("lora_B") }.contains { $0.1.values.contains { $0 != 0 } })
        XCTAssertEqual(kl.first!, 0, accuracy: 1e-7)
        XCTAssertGreaterThan(kl.last!, 0)
    }

    /// The loss is normalised over the whole batch, so feeding it in micro-batches (here of a few
    /// rows each) trains the same weights as one pass.
    func testMicroBatchesGiveTheSameTraining() throws {
        let whole = try trainer(rewards: [StartsWithSeven()], steps: 2, dynamic: 3)
        let split = try trainer(rewards: [StartsWithSeven()], steps: 2, dynamic: 3, microBatchTokens: 12)
        let initial = whole.policy.parameters.map(\.values)
        var splitRows: [Int] = []
        try whole.train { _ in }
        try split.train { if case .step(let report) = $0 { splitRows.append(report.rollouts.filter { !$0.dropped }.count) } }
        XCTAssertGreaterThan(lengthSortedMicroBatches(lengths: Array(repeating: 4, count: 32), tokenBudget: 12, partOverhead: 0).count, 8)
        XCTAssertEqual(splitRows, [32, 32])
        for (a, b) in zip(whole.policy.parameters, split.policy.parameters) {
            for (x, y) in zip(a.values, b.values) { XCTAssertEqual(x, y, accuracy: 1e-5) }
        }
        XCTAssertTrue(zip(initial, whole.policy.parameters).contains { $0 != $1.values }, "the steps trained something")
    }

    /// Micro-batches: every row once, sorted by length, none over the budget unless a row alone
    /// is, and the cheapest split: a part costs rows × longest + the overhead (its prompts).
    func testMicroBatchSplit() {
        let lengths = [5, 9, 3, 9, 1, 7, 20]
        func cost(_ parts: [[Int]], _ overhead: Int) -> Int { parts.reduce(0) { $0 + $1.count * $1.map { lengths[$0] }.max()! + overhead } }
        for overhead in [0, 6, 100] {
            let parts = lengthSortedMicroBatches(lengths: lengths, tokenBudget: 18, partOverhead: overhead)
            XCTAssertEqual(parts.flatMap { $0 }.sorted(), Array(lengths.indices))
            XCTAssertEqual(parts.flatMap { $0 }.map { lengths[$0] }, lengths.sorted())
            for p in parts where p.count > 1 { XCTAssertLessThanOrEqual(p.count * p.map { lengths[$0] }.max()!, 18) }
            // Against every split of the sorted rows into consecutive parts (2⁶ of them).
            let sorted = parts.flatMap { $0 }
            var cheapest = Int.max
            for cuts in 0..<(1 << (lengths.count - 1)) {
                var candidate: [[Int]] = [[sorted[0]]]
                for i in 1..<sorted.count { if cuts & (1 << (i - 1)) != 0 { candidate.append([sorted[i]]) } else { candidate[candidate.count - 1].append(sorted[i]) } }
                if candidate.allSatisfy({ $0.count == 1 || $0.count * $0.map { lengths[$0] }.max()! <= 18 }) { cheapest = min(cheapest, cost(candidate, overhead)) }
            }
            XCTAssertEqual(cost(parts, overhead), cheapest, "overhead \(overhead)")
        }
        XCTAssertEqual(lengthSortedMicroBatches(lengths: lengths, tokenBudget: 18, partOverhead: 100), [[4, 2], [0, 5], [1, 3], [6]])
        XCTAssertEqual(lengthSortedMicroBatches(lengths: [], tokenBudget: 18, partOverhead: 1), [])
    }

    /// Equal rewards everywhere with β = 0: no row is fed, but the optimizer still steps as it would
    /// on zero gradients (Adam's momentum and weight decay keep going, as in TRL).
    func testStepsWithoutSignalStillStepTheOptimizer() throws {
        struct Constant: Reward {
            let name = "one"
            func score(_ batch: [RewardInput]) throws -> RewardOutput { RewardOutput(values: batch.map { _ in 1 }) }
        }
        let t = try trainer(rewards: [Constant()], steps: 2, beta: 0)
        XCTAssertNil(t.reference)
        try t.train { _ in }
        XCTAssertEqual(t.optimizer.stepCount, 2)
    }

    func testSameSeedSameRollouts() throws {
        func texts() throws -> [String] {
            var out: [String] = []
            try trainer(rewards: [StartsWithSeven()], steps: 2).train { if case .step(let report) = $0 { out += report.rollouts.map(\.completion.text) } }
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
