import Foundation
import GroveTestSupport
import XCTest
@testable import GroveModel
@testable import GroveTensor

final class CheckpointTests: XCTestCase {
    let config = ModelConfig(modelType: .llama, vocabSize: 50, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 2,
                             numAttentionHeads: 4, numKeyValueHeads: 2, maxPositionEmbeddings: 64, tieWordEmbeddings: false,
                             eosTokenIds: [1])

    func logits(_ m: Transformer) -> [Float] { GradMode.withoutGrad { m.forward(tokens: [3, 1, 4, 1, 5, 9, 2, 6], batch: 1).values } }

    func testSaveLoadRoundTrip() throws {
        let model = Transformer(config: config, seed: 11)
        let dir = Fixtures.temporaryDirectory()
        try model.save(to: dir)
        let back = try Transformer.load(from: dir)
        XCTAssertEqual(back.config, config)
        XCTAssertEqual(logits(back), logits(model))
    }

    func testShardedRoundTrip() throws {
        let model = Transformer(config: config, seed: 12)
        let dir = Fixtures.temporaryDirectory()
        try model.save(to: dir, maxShardBytes: 8_000)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        XCTAssertTrue(files.contains("model.safetensors.index.json"))
        XCTAssertFalse(files.contains("model.safetensors"))
        XCTAssertTrue(files.contains { $0.hasPrefix("model-00001-of-") })
        XCTAssertEqual(logits(try Transformer.load(from: dir)), logits(model))
    }

    func testSeededInitIsReproducible() {
        XCTAssertEqual(logits(Transformer(config: config, seed: 5)), logits(Transformer(config: config, seed: 5)))
        XCTAssertNotEqual(logits(Transformer(config: config, seed: 5)), logits(Transformer(config: config, seed: 6)))
    }

    func testShapeMismatchNamesTheTensor() throws {
        let dir = Fixtures.temporaryDirectory()
        try Transformer(config: config, seed: 1).save(to: dir)
        var bigger = config
        bigger.intermediateSize = 64
        try bigger.save(to: dir)
        XCTAssertThrowsError(try Transformer.load(from: dir)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("model.layers.0.mlp.gate_proj.weight") && text.contains("[48, 32]") && text.contains("[64, 32]"), text)
        }
    }

    func testMissingAndUnexpectedTensors() throws {
        let dir = Fixtures.temporaryDirectory()
        let model = Transformer(config: config, seed: 1)
        try config.save(to: dir)
        try SafetensorsFile.write(model.namedParameters.filter { $0.0 != "model.norm.weight" }, to: dir.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try Transformer.load(from: dir)) { XCTAssertTrue("\($0)".contains("'model.norm.weight' is missing"), "\($0)") }
        try SafetensorsFile.write(model.namedParameters + [("model.extra.weight", Tensor(zeros: [2]))], to: dir.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try Transformer.load(from: dir)) { XCTAssertTrue("\($0)".contains("'model.extra.weight'"), "\($0)") }
    }

    func testMissingShardAndMissingFiles() throws {
        let dir = Fixtures.temporaryDirectory()
        try Transformer(config: config, seed: 1).save(to: dir, maxShardBytes: 8_000)
        let shard = try FileManager.default.contentsOfDirectory(atPath: dir.path).first { $0.hasPrefix("model-00002") }!
        try FileManager.default.removeItem(at: dir.appendingPathComponent(shard))
        XCTAssertThrowsError(try Transformer.load(from: dir)) { XCTAssertTrue("\($0)".contains(shard), "\($0)") }
        XCTAssertThrowsError(try Transformer.load(from: dir.appendingPathComponent("nope"))) { XCTAssertTrue("\($0)".contains("nope"), "\($0)") }
        let empty = Fixtures.temporaryDirectory()
        XCTAssertThrowsError(try Transformer.load(from: empty)) { XCTAssertTrue("\($0)".contains("config.json"), "\($0)") }
    }

    func testConfigErrorsNameTheKey() throws {
        func parse(_ json: [String: Any]) throws -> ModelConfig { try ModelConfig(json: json, file: "config.json") }
        let base: [String: Any] = ["model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 8,
                                   "num_hidden_layers": 1, "num_attention_heads": 2]
        XCTAssertNoThrow(try parse(base))
        var missing = base; missing["hidden_size"] = nil
        XCTAssertThrowsError(try parse(missing)) { XCTAssertTrue("\($0)".contains("'hidden_size'"), "\($0)") }
        var wrongType = base; wrongType["vocab_size"] = "ten"
        XCTAssertThrowsError(try parse(wrongType)) { XCTAssertTrue("\($0)".contains("'vocab_size'"), "\($0)") }
        var family = base; family["model_type"] = "gpt2"
        XCTAssertThrowsError(try parse(family)) { XCTAssertTrue("\($0)".contains("model_type") && "\($0)".contains("gpt2"), "\($0)") }
        var rope = base; rope["rope_parameters"] = ["rope_type": "yarn", "rope_theta": 1e4]
        XCTAssertThrowsError(try parse(rope)) { XCTAssertTrue("\($0)".contains("yarn"), "\($0)") }
        var heads = base; heads["num_key_value_heads"] = 3
        XCTAssertThrowsError(try parse(heads)) { XCTAssertTrue("\($0)".contains("num_key_value_heads"), "\($0)") }
    }

    func testOutOfRangeTokenIsAnError() throws {
        let model = Transformer(config: config, seed: 1)
        XCTAssertNoThrow(try model.checkTokens([0, 49]))
        XCTAssertThrowsError(try model.checkTokens([0, 50])) { XCTAssertTrue("\($0)".contains("50"), "\($0)") }
    }
}
