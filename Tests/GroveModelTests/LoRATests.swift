import Foundation
import GroveTestSupport
import XCTest
@testable import GroveModel
@testable import GroveTensor

/// LoRA against PEFT 0.21.2 on `model_a_qwen2` (`lora_a_qwen2`: r 4, alpha 8, every linear
/// layer): logits, gradients, merged weights, and the adapter folder in PEFT's format.
final class LoRATests: XCTestCase {
    static let fixture = Fixtures.publicDir.appendingPathComponent("lora_a_qwen2")
    static let adapterDir = fixture.appendingPathComponent("adapter")
    static let baseDir = Fixtures.modelA.appendingPathComponent("model")
    var expected: [String: Any]!

    override func setUpWithError() throws { expected = try Fixtures.json(Self.fixture.appendingPathComponent("expected.json")) }

    func adapted() throws -> Transformer { try Transformer.load(adapter: Self.adapterDir, base: Self.baseDir) }
    var sequences: [[Int32]] { (expected["sequences"] as! [[String: Any]]).map { ($0["input_ids"] as! [Int]).map(Int32.init) } }
    func logits(_ model: Transformer, _ tokens: [Int32]) -> [Float] { GradMode.withoutGrad { model.forward(tokens: tokens, batch: 1).values } }

    func testReadsPEFTConfig() throws {
        let (config, base) = try AdapterFolder.readConfig(from: Self.adapterDir)
        XCTAssertEqual(config, try LoRAConfig(r: 4, alpha: 8, targetModules: ["all-linear"]))
        XCTAssertEqual(config.scale, 2)
        XCTAssertEqual(base, "public/model_a_qwen2/model")
        XCTAssertEqual(try LoRAConfig(r: 16, alpha: 8, useRslora: true).scale, 2)
        XCTAssertThrowsError(try LoRAConfig(r: 4, alpha: 8, targetModules: ["lm_head"]))
    }

    func testLogitsMatchPEFT() throws {
        let model = try adapted()
        for (i, tokens) in sequences.enumerated() {
            let reference = try NumpyFile.read(Self.fixture.appendingPathComponent("lora_logits_\(i).npy"))
            let diff = maxAbsDiff(logits(model, tokens), reference.values)
            print("LoRA parity: lora_logits_\(i) max abs diff \(diff)")
            XCTAssertLessThan(diff, 1e-4, "lora_logits_\(i)")
        }
    }

    /// d (mean next-token NLL of sequence 2) / d every LoRA matrix; the frozen base gets no gradient buffer.
    func testGradientsMatchPEFT() throws {
        let model = try adapted()
        let gradient = expected["gradient"] as! [String: Any]
        let tokens = sequences[2]
        let loss = crossEntropy(model.forward(tokens: tokens, batch: 1), targets: Array(tokens.dropFirst()) + [-100])
        XCTAssertEqual(loss.item, Float(gradient["loss_value"] as! Double), accuracy: 1e-4)
        loss.backward()
        let reference = Dictionary(uniqueKeysWithValues: try SafetensorsFile.read(Self.fixture.appendingPathComponent("grads.safetensors")))
        XCTAssertEqual(Set(reference.keys), Set(model.adapterParameters.map(\.0)))
        var worst: Float = 0
        for (name, p) in model.adapterParameters {
            let diff = maxAbsDiff(try XCTUnwrap(p.gradValues, name), try XCTUnwrap(reference[name], name).values)
            worst = max(worst, diff)
            XCTAssertLessThan(diff, 1e-5, name)
        }
        print("LoRA parity: loss \(loss.item) vs \(gradient["loss_value"]!), gradients max abs diff \(worst)")
        for (name, p) in model.namedParameters { XCTAssertNil(p.gradStorage, "\(name) is frozen") }
        XCTAssertEqual(model.parameters.count, 2 * 7 * model.config.numHiddenLayers)
    }

    func testMergedWeightNormsMatchPEFT() throws {
        let model = try adapted()
        let before = logits(model, sequences[1])
        model.mergeAdapter()
        XCTAssertNil(model.adapter)
        let norms = expected["merged_weight_norms"] as! [String: Double]
        XCTAssertEqual(Set(norms.keys), Set(model.namedParameters.map(\.0)))
        var worst = 0.0
        for (name, p) in model.namedParameters {
            let norm = p.values.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            worst = max(worst, abs(norm - norms[name]!) / norms[name]!)
            XCTAssertEqual(norm, norms[name]!, accuracy: 1e-5 * norms[name]!, name)
        }
        print("LoRA parity: merged weight norms max relative diff \(worst)")
        XCTAssertLessThan(maxAbsDiff(logits(model, sequences[1]), before), 1e-4, "the merged model computes what base + adapter did")
    }

    func testDisabledAdapterIsTheBase() throws {
        let model = try adapted(), base = try Transformer.load(from: Self.baseDir)
        XCTAssertEqual(model.withAdapterDisabled { logits(model, sequences[0]) }, logits(base, sequences[0]))
        XCTAssertNotEqual(logits(model, sequences[0]), logits(base, sequences[0]))
        XCTAssertTrue(model.adapterEnabled)
    }

    /// Saved as PEFT saves: the same config fields, tensor names, shapes and values.
    func testSaveWritesPEFTsFormat() throws {
        let model = try adapted(), dir = Fixtures.temporaryDirectory()
        try model.save(to: dir)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("config.json").path), "only the adapter")
        let ours = try Fixtures.json(dir.appendingPathComponent(AdapterFolder.configFile))
        let peft = try Fixtures.json(Self.adapterDir.appendingPathComponent(AdapterFolder.configFile))
        XCTAssertEqual(Set(ours.keys), Set(peft.keys))
        for key in peft.keys where !["base_model_name_or_path", "target_modules"].contains(key) {
            if key == "lora_dropout", let a = ours[key] as? NSNumber, let b = peft[key] as? NSNumber {
                XCTAssertEqual(a.doubleValue, b.doubleValue, key)  // lora_dropout: Foundation writes 0.0 as 0
            } else {
                XCTAssertEqual(ours[key].map { "\($0)" }, peft[key].map { "\($0)" }, key)
            }
        }
        XCTAssertEqual(Set(ours["target_modules"] as! [String]), Set(peft["target_modules"] as! [String]))
        XCTAssertEqual(ours["base_model_name_or_path"] as? String, Self.baseDir.path)
        let saved = try SafetensorsFile.read(dir.appendingPathComponent(AdapterFolder.weightsFile))
        let original = Dictionary(uniqueKeysWithValues: try SafetensorsFile.read(Self.adapterDir.appendingPathComponent(AdapterFolder.weightsFile)))
        XCTAssertEqual(saved.count, original.count)
        XCTAssertTrue(original.keys.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"))
        for (name, t) in saved {
            let o = try XCTUnwrap(original[name], name)
            XCTAssertEqual(t.shape, o.shape, name)
            XCTAssertEqual(t.values, o.values, name)
        }
        // A folder with the adapter loads as base + adapter (the base named in adapter_config.json).
        XCTAssertEqual(logits(try Transformer.load(from: dir), sequences[0]), logits(model, sequences[0]))
    }

    /// PEFT's initialisation: A uniform in ±1/√in, B zero (the model starts as the base), seeded.
    func testFreshAdapter() throws {
        let base = try Transformer.load(from: Self.baseDir)
        let config = try LoRAConfig(r: 8, alpha: 16, targetModules: ["q_proj", "v_proj"])
        let one = try Transformer.load(from: Self.baseDir), two = try Transformer.load(from: Self.baseDir)
        one.addAdapter(config, seed: 3); two.addAdapter(config, seed: 3)
        XCTAssertEqual(one.adapterParameters.map(\.0), ["model.layers.0.self_attn.q_proj.lora_A.weight", "model.layers.0.self_attn.q_proj.lora_B.weight",
                                                        "model.layers.0.self_attn.v_proj.lora_A.weight", "model.layers.0.self_attn.v_proj.lora_B.weight",
                                                        "model.layers.1.self_attn.q_proj.lora_A.weight", "model.layers.1.self_attn.q_proj.lora_B.weight",
                                                        "model.layers.1.self_attn.v_proj.lora_A.weight", "model.layers.1.self_attn.v_proj.lora_B.weight"])
        for ((name, a), (_, b)) in zip(one.adapterParameters, two.adapterParameters) {
            XCTAssertEqual(a.values, b.values, "seeded: \(name)")
            if name.contains("lora_A") {
                XCTAssertEqual(a.shape, [8, 64])
                let bound = 1 / Float(64).squareRoot()
                XCTAssertTrue(a.values.allSatisfy { abs($0) <= bound })
                XCTAssertGreaterThan(a.values.map(abs).max()!, 0.9 * bound)
            } else {
                XCTAssertTrue(a.values.allSatisfy { $0 == 0 })
            }
        }
        XCTAssertEqual(one.parameters.map(\.shape), one.adapterParameters.map(\.1.shape))
        XCTAssertTrue(one.namedParameters.allSatisfy { !$0.1.requiresGrad })
        XCTAssertEqual(logits(one, sequences[0]), logits(base, sequences[0]), "B = 0: the base model")
    }

    /// Dropout acts on the low-rank input while training (recording gradients), never in inference.
    func testDropoutOnlyWhileTraining() throws {
        let model = try adapted()
        model.adapter!.dropout = 0.5
        let plain = try adapted()
        XCTAssertEqual(logits(model, sequences[0]), logits(plain, sequences[0]))
        let training = model.forward(tokens: sequences[0], batch: 1).values
        XCTAssertGreaterThan(maxAbsDiff(training, logits(plain, sequences[0])), 1e-3)
    }

    /// Decode runs on packed copies of the weights with the adapter merged in: generation with the
    /// adapter is the merged model's, greedy and sampled; with the adapter off, the base's.
    func testGenerationWithAdapterEqualsMergedModel() throws {
        let model = try adapted(), merged = try adapted(), base = try Transformer.load(from: Self.baseDir)
        merged.mergeAdapter()
        let prompts = [sequences[0], Array(sequences[1].prefix(5)), Array(sequences[2].prefix(11))]
        for temperature: Float in [0, 1] {
            let options = SamplingOptions(temperature: temperature, maxNewTokens: 12)
            let rngs = prompts.indices.map { SeededRandom(seed: 9, streams: [UInt64($0)]) }
            let ours = model.generate(prompts: prompts, options: options, rngs: rngs)
            let theirs = merged.generate(prompts: prompts, options: options, rngs: rngs)
            XCTAssertEqual(ours.map(\.tokens), theirs.map(\.tokens), "temperature \(temperature)")
            for (a, b) in zip(ours, theirs) { XCTAssertLessThan(maxAbsDiff(a.logprobs, b.logprobs), 1e-4) }
            let off = model.withAdapterDisabled { model.generate(prompts: prompts, options: options, rngs: rngs) }
            XCTAssertEqual(off.map(\.tokens), base.generate(prompts: prompts, options: options, rngs: rngs).map(\.tokens))
        }
    }
}
