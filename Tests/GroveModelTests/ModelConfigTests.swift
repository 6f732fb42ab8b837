import Foundation
import XCTest
@testable import GroveModel

/// config.json values that would abort an allocation, or silently change the model, are errors naming the key.
final class ModelConfigTests: XCTestCase {
    let base: [String: Any] = ["model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 8,
                               "num_hidden_layers": 1, "num_attention_heads": 2]

    func assertRejected(_ changes: [String: Any?], naming words: [String], file: StaticString = #filePath, line: UInt = #line) {
        var json = base
        for (k, v) in changes { json[k] = v }
        XCTAssertThrowsError(try ModelConfig(json: json, file: "dir/config.json"), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("dir/config.json") && words.allSatisfy(text.contains), text, file: file, line: line)
        }
    }

    func testSizesBeyondAnyModel() {
        assertRejected(["vocab_size": 1_000_000_000], naming: ["'vocab_size'", "too large"])
        assertRejected(["hidden_size": 1 << 40], naming: ["'hidden_size'", "too large"])
        assertRejected(["head_dim": 1 << 40], naming: ["'head_dim'", "too large"])
        assertRejected(["num_hidden_layers": 1_000_000_000], naming: ["'num_hidden_layers'", "too large"])
        assertRejected(["intermediate_size": 1e300], naming: ["'intermediate_size'"])
        assertRejected(["max_position_embeddings": 1 << 40], naming: ["'max_position_embeddings'", "too large"])
    }

    /// head_dim defaults to hidden_size / num_attention_heads: a zero count divided by zero.
    func testZeroHeads() {
        assertRejected(["num_attention_heads": 0], naming: ["'num_attention_heads'", "positive"])
    }

    /// Each size within its bound, together more float32 parameters than this machine holds.
    func testParametersBeyondThisMachine() {
        assertRejected(["vocab_size": 1 << 24, "hidden_size": 1 << 16, "num_attention_heads": 256], naming: ["'vocab_size'", "memory"])
        assertRejected(["hidden_size": 1 << 16, "intermediate_size": 1 << 18, "num_hidden_layers": 1 << 10, "num_attention_heads": 256],
                       naming: ["'num_hidden_layers'", "memory"])
    }

    func testEpsAndThetaMustBePositive() {
        assertRejected(["rms_norm_eps": 0], naming: ["'rms_norm_eps'"])
        assertRejected(["rms_norm_eps": -1e-6], naming: ["'rms_norm_eps'"])
        assertRejected(["rope_theta": 0], naming: ["'rope_theta'"])
        assertRejected(["rope_parameters": ["rope_type": "default", "rope_theta": -10_000]], naming: ["'rope_theta'"])
    }

    /// transformers' AutoConfig needs model_type too; guessing qwen2 would load a Llama with the wrong biases.
    func testMissingModelType() {
        assertRejected(["model_type": nil], naming: ["'model_type'", "missing"])
    }

    /// Special ids index the embedding and become Int32 tokens.
    func testTokenIdsOutsideTheVocabulary() {
        assertRejected(["pad_token_id": 10], naming: ["'pad_token_id'", "10"])
        assertRejected(["bos_token_id": -1], naming: ["'bos_token_id'"])
        assertRejected(["eos_token_id": [2, 10_000_000_000]], naming: ["'eos_token_id'"])
    }
}
