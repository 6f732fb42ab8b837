import Foundation
import GroveTestSupport
import XCTest
@testable import GroveModel
@testable import GroveRollout
@testable import GroveTensor
@testable import GroveTokenizer

/// Rollouts from a seed: the same seed and step give the same completions, whatever else is in the batch.
final class RolloutReproducibilityTests: XCTestCase {
    func engine() throws -> RolloutEngine {
        let tok = try Tokenizer.train(corpus: ["0123456789+="], vocabSize: 262, specialTokens: ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        let config = ModelConfig(vocabSize: tok.vocabSize, hiddenSize: 16, intermediateSize: 32, numHiddenLayers: 1,
                                 numAttentionHeads: 2, numKeyValueHeads: 1, maxPositionEmbeddings: 64)
        return RolloutEngine(model: Transformer(config: config, seed: 3), tokenizer: tok,
                             options: SamplingOptions(temperature: 1, topK: 50, topP: 0.95, maxNewTokens: 12))
    }

    func testSameSeedSameRollouts() throws {
        let e = try engine()
        let a = e.rollouts(prompts: ["1+2=", "30+4="], promptIds: [5, 9], groupSize: 3, seed: 42, step: 1)
        let b = e.rollouts(prompts: ["1+2=", "30+4="], promptIds: [5, 9], groupSize: 3, seed: 42, step: 1)
        XCTAssertEqual(a.map(\.ids), b.map(\.ids))
        XCTAssertEqual(a.map(\.logprobs), b.map(\.logprobs))
        XCTAssertEqual(a.map(\.group), [0, 0, 0, 1, 1, 1])
        XCTAssertEqual(a.map(\.sample), [0, 1, 2, 0, 1, 2])
        XCTAssertEqual(Set(a[0..<3].map(\.ids)).count, 3, "a group's samples differ")
        let nextStep = e.rollouts(prompts: ["1+2=", "30+4="], promptIds: [5, 9], groupSize: 3, seed: 42, step: 2)
        XCTAssertNotEqual(a.map(\.ids), nextStep.map(\.ids))
    }

    /// A prompt's completions depend on its id, not on its place in the batch or the batch's size.
    func testRolloutsIndependentOfTheBatch() throws {
        let e = try engine()
        let alone = e.rollouts(prompts: ["30+4="], promptIds: [9], groupSize: 3, seed: 42, step: 1)
        let crowd = e.rollouts(prompts: Array(repeating: "7=", count: 3) + ["30+4="], promptIds: [1, 2, 3, 9], groupSize: 3, seed: 42, step: 1)
        XCTAssertEqual(alone.map(\.ids), crowd.suffix(3).map(\.ids))
        XCTAssertEqual(alone.map(\.logprobs), crowd.suffix(3).map(\.logprobs))
    }
}
