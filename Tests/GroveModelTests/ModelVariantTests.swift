import Foundation
import GroveTestSupport
import XCTest
@testable import GroveModel
@testable import GroveTensor

/// Other shapes than the shared fixture, against transformers (Tests/Fixtures), and
/// cached decoding against the full forward pass for every variant.
final class ModelVariantTests: XCTestCase {
    static let variants = ["llama_untied_gqa4_bf16", "qwen2_untied_mha_f16"]

    func ids(_ dir: URL) throws -> [Int32] {
        (try Fixtures.json(dir.appendingPathComponent("input_ids.json"))["input_ids"] as! [Int]).map(Int32.init)
    }

    func testLogitsMatchTransformers() throws {
        for name in Self.variants {
            let dir = Fixtures.local.appendingPathComponent(name)
            let model = try Transformer.load(from: dir)
            let reference = try NumpyFile.read(dir.appendingPathComponent("logits.npy"))
            let logits = GradMode.withoutGrad { model.forward(tokens: try! ids(dir), batch: 1) }
            XCTAssertLessThan(maxAbsDiff(logits.values, reference.values), 1e-4, name)
        }
    }

    func testLlamaShapesAreRead() throws {
        let config = try ModelConfig.load(from: Fixtures.local.appendingPathComponent("llama_untied_gqa4_bf16"))
        XCTAssertEqual(config.modelType, .llama)
        XCTAssertEqual(config.headDim, 24)
        XCTAssertEqual(config.numKeyValueHeads, 1)
        XCTAssertEqual(config.ropeTheta, 500_000)
        XCTAssertFalse(config.tieWordEmbeddings)
        XCTAssertTrue(config.attentionBias)
        XCTAssertEqual(config.eosTokenIds, [2])
    }

    /// transformers 4 wrote `rope_theta` at the top level; both spellings give the same model.
    func testLegacyTopLevelRopeTheta() throws {
        let source = Fixtures.local.appendingPathComponent("llama_untied_gqa4_bf16")
        let dir = Fixtures.temporaryDirectory()
        for f in ["model.safetensors", "logits.npy", "input_ids.json"] {
            try FileManager.default.copyItem(at: source.appendingPathComponent(f), to: dir.appendingPathComponent(f))
        }
        var json = try Fixtures.json(source.appendingPathComponent("config.json"))
        json["rope_parameters"] = nil
        json["rope_theta"] = 500_000.0
        try JSONSerialization.data(withJSONObject: json).write(to: dir.appendingPathComponent("config.json"))
        let model = try Transformer.load(from: dir)
        XCTAssertEqual(model.config.ropeTheta, 500_000)
        let logits = GradMode.withoutGrad { model.forward(tokens: try! ids(dir), batch: 1) }
        XCTAssertLessThan(maxAbsDiff(logits.values, try NumpyFile.read(dir.appendingPathComponent("logits.npy")).values), 1e-4)
    }

    /// Prefill of a left-padded batch, then one token at a time, must give the logits of a
    /// full forward pass over each whole (unpadded) sequence at every position — through the
    /// public cached forward and through `generate`'s decode step on the packed weights.
    func testCachedDecodingEqualsFullForward() throws {
        var models = try Self.variants.map { try Transformer.load(from: Fixtures.local.appendingPathComponent($0)) }
        models.append(try Transformer.load(from: Fixtures.modelA.appendingPathComponent("model")))
        models.append(try Transformer.load(from: Fixtures.modelF.appendingPathComponent("model")))
        models += try DeepSeekParityTests.variants.map { try Transformer.load(from: DeepSeekParityTests.variant($0).appendingPathComponent("model")) }
        // DeepSeek models decode from their latent cache (the default) and from expanded keys and values.
        let runs = models.flatMap { model -> [(Transformer, KVCache.Layout)] in
            model.config.attention == .grouped ? [(model, .keysAndValues)] : [(model, .latent), (model, .keysAndValues)]
        }
        for (model, layout) in runs {
          for packed in [nil, GradMode.withoutGrad { DecodeWeights(model) }] {
            let V = model.config.vocabSize
            let sequences: [[Int32]] = [[5, 9, 17, 3, 8, 21, 4, 11], [7, 2, 30, 6, 1, 12]]  // different lengths
            let promptLengths = [3, 1]
            GradMode.withoutGrad {
                let P = promptLengths.max()!, steps = 5
                let cache = KVCache(config: model.config, batch: 2, capacity: P + steps, layout: layout)
                var tokens = [Int32](repeating: 0, count: 2 * P), mask = [Bool](repeating: false, count: 2 * P)
                for b in 0..<2 {
                    for t in 0..<promptLengths[b] {
                        tokens[b * P + P - promptLengths[b] + t] = sequences[b][t]
                        mask[b * P + P - promptLengths[b] + t] = true
                    }
                }
                var cached: [[[Float]]] = [[], []]  // per row, logits of each real position
                let prefill = model.forward(tokens: tokens, batch: 2, attentionMask: mask, cache: cache)
                for b in 0..<2 {
                    for t in (P - promptLengths[b])..<P { cached[b].append(Array(UnsafeBufferPointer(start: prefill.data + (b * P + t) * V, count: V))) }
                }
                for s in 0..<steps {
                    let next = (0..<2).map { sequences[$0][promptLengths[$0] + s] }
                    let logits = packed.map { model.decodeStep([.init(tokens: next, attentionMask: [true, true], cache: cache)], packed: $0) }
                        ?? model.forward(tokens: next, batch: 2, attentionMask: [true, true], cache: cache)
                    for b in 0..<2 { cached[b].append(Array(UnsafeBufferPointer(start: logits.data + b * V, count: V))) }
                }
                for b in 0..<2 {
                    let n = promptLengths[b] + steps
                    let full = model.forward(tokens: Array(sequences[b].prefix(n)), batch: 1)
                    for t in 0..<n {
                        let reference = Array(UnsafeBufferPointer(start: full.data + t * V, count: V))
                        XCTAssertLessThan(maxAbsDiff(cached[b][t], reference), 1e-4,
                                          "\(model.config.modelType) \(layout) row \(b) position \(t) packed \(packed != nil)")
                    }
                }
            }
          }
        }
    }
}
