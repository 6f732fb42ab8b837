import Foundation
import GroveTestSupport
import XCTest
@testable import grove
import GroveModel
import GroveRun
import GroveStore
import GroveTensor

/// A recipe with `model.lora`: checkpoints and final/ hold the adapter (PEFT's folder), a
/// resume restores it and its optimizer moments, and `grove merge` folds it into the base.
final class LoRARunTests: XCTestCase {
    static let base = Fixtures.modelA.appendingPathComponent("model")

    func recipe(output: URL, grpoSteps: Int, lora: String = "{r: 4, alpha: 8, dropout: 0.1, target_modules: [q_proj, v_proj, down_proj]}",
                model: String? = nil, grpo: String = "") throws -> Recipe {
        FileManager.default.changeCurrentDirectoryPath(RecipeTests.root.path)
        let text = """
        name: tiny-lora
        seed: 3
        output_dir: \(output.path)
        model: \(model ?? "{path: \(Self.base.path), lora: \(lora)}")
        data: {train: Datasets/arithmetic/eval.jsonl, eval_size: 8, task: arithmetic}
        stages:
          - sft: {steps: 3, batch_size: 8, micro_batch_size: 4, lr: 3e-3, max_length: 96, checkpoint_every: 3}
          - grpo: {steps: \(grpoSteps), prompts_per_step: 2, group_size: 4, max_new_tokens: 6, lr: 1e-2, checkpoint_every: 2, \(grpo)rewards: [{task: {weight: 1}}, {length: {max_length: 6, weight: 0.1}}]}
        eval: {samples: 4, max_new_tokens: 8}
        """
        try FileManager.default.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
        let file = output.deletingLastPathComponent().appendingPathComponent("lora-\(UUID().uuidString).yaml")
        try text.write(to: file, atomically: true, encoding: .utf8)
        return try Recipe.load(path: file.path)
    }

    func metric(_ output: URL, _ name: String) throws -> [Double] {
        let store = try RunStore(path: output.appendingPathComponent("run.sqlite"))
        return try store.metric(run: try XCTUnwrap(store.runs().last).id, name: name).map(\.value)
    }

    func exists(_ url: URL, _ file: String) -> Bool { FileManager.default.fileExists(atPath: url.appendingPathComponent(file).path) }

    func testLoRARunSavesTheAdapterResumesAndMerges() throws {
        let root = Fixtures.temporaryDirectory(), straight = root.appendingPathComponent("straight"), resumed = root.appendingPathComponent("resumed")
        try RecipeRun(recipe: try recipe(output: straight, grpoSteps: 4), resume: false, observer: { _ in }).run()
        let rewards = try metric(straight, "reward"), kl = try metric(straight, "kl")
        XCTAssertEqual(rewards.count, 4)
        XCTAssertGreaterThan(kl.last!, 0, "the policy moved away from the base, its reference")

        let checkpoint = straight.appendingPathComponent("checkpoints/checkpoint-s01-0000004"), final = straight.appendingPathComponent("final")
        for dir in [checkpoint, final] {
            XCTAssertTrue(exists(dir, "adapter_config.json") && exists(dir, "adapter_model.safetensors") && exists(dir, "tokenizer.json"), dir.path)
            XCTAssertFalse(exists(dir, "model.safetensors") || exists(dir, "reference"), "the adapter only: \(dir.path)")
        }
        let trained = try Transformer.load(from: final), base = try Transformer.load(from: Self.base)
        XCTAssertEqual(trained.adapter?.targetModules, ["down_proj", "q_proj", "v_proj"])
        XCTAssertEqual(trained.namedParameters.map(\.1.values), base.namedParameters.map(\.1.values), "the base is untouched")
        XCTAssertEqual(trained.adapterParameters.count, 2 * 3 * 2)

        // Interrupted after GRPO step 2 and resumed: the adapter, its moments and the dropout masks
        // are restored, so the last two steps are the uninterrupted run's.
        try RecipeRun(recipe: try recipe(output: resumed, grpoSteps: 2), resume: false, observer: { _ in }).run()
        try RecipeRun(recipe: try recipe(output: resumed, grpoSteps: 4), resume: true, observer: { _ in }).run()
        XCTAssertEqual(try metric(resumed, "reward"), Array(rewards.dropFirst(2)))
        XCTAssertEqual(try metric(resumed, "kl"), Array(kl.dropFirst(2)))
        let again = try Transformer.load(from: resumed.appendingPathComponent("final"))
        for ((name, a), (_, b)) in zip(again.adapterParameters, trained.adapterParameters) {
            XCTAssertLessThan(maxAbsDiff(a.values, b.values), 1e-6, name)
        }

        // grove merge: a plain Hugging Face folder computing what base + adapter does.
        let merged = root.appendingPathComponent("merged")
        try Merge.parse([final.path, "--base", Self.base.path, "--out", merged.path]).run()
        XCTAssertTrue(exists(merged, "config.json") && exists(merged, "model.safetensors") && exists(merged, "tokenizer.json"))
        let tokens: [Int32] = [5, 17, 200, 33, 9, 1000]
        let ours = GradMode.withoutGrad { trained.forward(tokens: tokens, batch: 1).values }
        let plain = try Transformer.load(from: merged)
        XCTAssertNil(plain.adapter)
        XCTAssertLessThan(maxAbsDiff(GradMode.withoutGrad { plain.forward(tokens: tokens, batch: 1).values }, ours), 1e-4)
    }

    func testRecipeChecksLoRA() throws {
        let output = Fixtures.temporaryDirectory().appendingPathComponent("run")
        func message(_ body: () throws -> Recipe) -> String {
            do { _ = try body(); return "no error" } catch { return "\(error)" }
        }
        let r = try recipe(output: output, grpoSteps: 1, lora: "{r: 8, target_modules: all-linear, use_rslora: true}")
        XCTAssertEqual(r.lora, try LoRAConfig(r: 8, alpha: 16, targetModules: LoRAConfig.allLinear, useRslora: true))
        XCTAssertTrue(message { try recipe(output: output, grpoSteps: 1, lora: "{r: 4, target_modules: [lm_head]}") }.contains("'lm_head' is not a linear layer"))
        XCTAssertTrue(message { try recipe(output: output, grpoSteps: 1, lora: "{r: 4, rank: 3}") }.contains("model.lora.rank: unknown key"))
        XCTAssertTrue(message { try recipe(output: output, grpoSteps: 1, lora: "{alpha: 4}") }.contains("model.lora"))
        XCTAssertTrue(message { try recipe(output: output, grpoSteps: 1, grpo: "ref_refresh_every: 2, ") }.contains("cannot be refreshed"))
        XCTAssertTrue(message {
            try recipe(output: output, grpoSteps: 1, model: "{init: {hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8}, tokenizer: {train: {vocab_size: 300}}, lora: {r: 2}}")
        }.contains("needs 'path'"))
    }
}
