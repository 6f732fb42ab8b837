import Foundation
import XCTest
@testable import grove
import GroveRun
@testable import GroveStore
import GroveModel

/// A whole tiny recipe through the runner: data, tokenizer training, SFT, evaluation,
/// checkpoints, run.sqlite, and a resume that reproduces the uninterrupted losses.
final class RunnerTests: XCTestCase {
    func recipe(output: URL, steps: Int, grpoSteps: Int = 0, control: Bool = false, prompts: String? = nil, top: String = "") throws -> Recipe {
        try RunnerTests.recipe(output: output, steps: steps, grpoSteps: grpoSteps, control: control, prompts: prompts, top: top)
    }

    /// A tiny recipe: a 1-layer model, `steps` SFT steps, optionally `grpoSteps` GRPO steps;
    /// `top` adds top-level keys.
    static func recipe(output: URL, steps: Int, grpoSteps: Int = 0, control: Bool = false, prompts: String? = nil, top: String = "") throws -> Recipe {
        FileManager.default.changeCurrentDirectoryPath(RecipeTests.root.path)
        let text = """
        name: tiny
        seed: 3
        output_dir: \(output.path)
        \(top)
        model:
          init: {model_type: llama, hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 64, max_position_embeddings: 128}
          tokenizer: {train: {vocab_size: 300}}
        data: {train: Datasets/arithmetic/eval.jsonl, eval_size: 8, task: arithmetic}
        stages:
          - sft: {steps: \(steps), batch_size: 8, micro_batch_size: 4, lr: 3e-3, max_length: 96, checkpoint_every: 3, eval_every: 3}
        \(grpoSteps == 0 ? "" : "  - grpo: {steps: \(grpoSteps), prompts_per_step: 2, group_size: 4, max_new_tokens: 6, lr: 1e-3, checkpoint_every: 2, sft_control: \(control), \(prompts.map { "prompts: \($0), " } ?? "")rewards: [{task: {weight: 1}}, {length: {max_length: 6, weight: 0.1}}]}")
        eval: {samples: 4, max_new_tokens: 8}
        """
        let file = output.deletingLastPathComponent().appendingPathComponent("tiny-\(UUID().uuidString).yaml")
        try FileManager.default.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: file, atomically: true, encoding: .utf8)
        return try Recipe.load(path: file.path)
    }

    /// Runs a recipe as `grove run` does, without output.
    @discardableResult
    func run(_ recipe: Recipe, resume: Bool) throws -> RunReport {
        try RecipeRun(recipe: recipe, resume: resume, observer: { _ in }).run()
    }

    func losses(_ output: URL, metric: String = "train/loss") throws -> [Double] {
        let store = try RunStore(path: output.appendingPathComponent("run.sqlite"))
        let last = try XCTUnwrap(store.runs().last)
        return try store.metric(run: last.id, name: metric).map(\.value)
    }

    /// SFT then GRPO: rollouts land in run.sqlite, and a resume mid-GRPO (with its reference
    /// model) gives the same rewards as the uninterrupted run.
    func testGRPOStageStoresRolloutsAndResumes() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("grove-grpo-\(UUID().uuidString)")
        let straight = base.appendingPathComponent("straight"), resumed = base.appendingPathComponent("resumed")
        try run(try recipe(output: straight, steps: 3, grpoSteps: 4), resume: false)
        let rewards = try losses(straight, metric: "reward")
        XCTAssertEqual(rewards.count, 4)
        let store = try RunStore(path: straight.appendingPathComponent("run.sqlite"))
        let rows = try store.rollouts(run: 1, step: 2)
        XCTAssertEqual(rows.count, 8)
        XCTAssertEqual(Set(rows.flatMap { $0.rewards.keys }), ["arithmetic", "length"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: straight.appendingPathComponent("checkpoints/checkpoint-s01-0000004/reference/model.safetensors").path))

        try run(try recipe(output: resumed, steps: 3, grpoSteps: 2), resume: false)
        try run(try recipe(output: resumed, steps: 3, grpoSteps: 4), resume: true)
        XCTAssertEqual(try losses(resumed, metric: "reward"), Array(rewards.dropFirst(2)))
    }

    /// sft_control: the model the GRPO stage started from gets further SFT for the GRPO steps' wall
    /// time (Σ GRPO step times / mean SFT step time, both as run.sqlite holds them), is evaluated
    /// under its own stage label, and leaves the run's final model (GRPO's) alone.
    func testSFTControlTrainsTheStartModelForTheGRPOTime() throws {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("grove-control-\(UUID().uuidString)/run")
        try run(try recipe(output: output, steps: 3, grpoSteps: 4, control: true), resume: false)
        let store = try RunStore(path: output.appendingPathComponent("run.sqlite"))
        let grpoSeconds = try store.stageMetric(run: 1, stage: "1:grpo", name: "time/step").map(\.value).reduce(0, +)
        let sftTimes = try store.stageMetric(run: 1, stage: "0:sft", name: "train/step_time").map(\.value)
        XCTAssertEqual(sftTimes.count, 3)
        let expected = max(1, Int((grpoSeconds / (sftTimes.reduce(0, +) / 3)).rounded()))
        XCTAssertEqual(try store.stageMetric(run: 1, stage: "1:sft_control", name: "train/loss").count, expected)
        XCTAssertEqual(try store.stageMetric(run: 1, stage: "1:sft_control", name: "eval/accuracy").map(\.step), [expected])
        // The final model is the GRPO one, as its last checkpoint holds it.
        let final = try Transformer.load(from: output.appendingPathComponent("final"))
        let grpo = try Transformer.load(from: output.appendingPathComponent("checkpoints/checkpoint-s01-0000004"))
        let start = try Transformer.load(from: output.appendingPathComponent("control-start-1"))
        XCTAssertEqual(final.parameters[0].values, grpo.parameters[0].values)
        XCTAssertNotEqual(final.parameters[0].values, start.parameters[0].values)
    }

    /// A grpo stage's own prompt file: every rollout's prompt comes from it, not from data.train.
    func testGRPOStagePromptsFile() throws {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("grove-prompts-\(UUID().uuidString)/run")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let lines = try String(contentsOfFile: RecipeTests.root.appendingPathComponent("Datasets/arithmetic/eval.jsonl").path, encoding: .utf8)
            .split(separator: "\n").filter { $0.contains("\"level\":\"sub2\"") }.prefix(3)
        let file = output.appendingPathComponent("prompts.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        let prompts = Set(try lines.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])["prompt"] as! String })
        try run(try recipe(output: output, steps: 2, grpoSteps: 3, prompts: file.path), resume: false)
        let rows = try RunStore(path: output.appendingPathComponent("run.sqlite")).rollouts(run: 1)
        XCTAssertEqual(rows.count, 3 * 2 * 4)
        XCTAssertTrue(Set(rows.map(\.prompt)).isSubset(of: prompts), "\(Set(rows.map(\.prompt)))")
    }

    func testRunCheckpointsAndResumesIdentically() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("grove-run-\(UUID().uuidString)")
        let straight = base.appendingPathComponent("straight"), resumed = base.appendingPathComponent("resumed")
        try run(try recipe(output: straight, steps: 6), resume: false)
        let reference = try losses(straight)
        XCTAssertEqual(reference.count, 6)
        for f in ["final/model.safetensors", "final/tokenizer.json", "checkpoints/checkpoint-s00-0000006/optimizer.safetensors"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: straight.appendingPathComponent(f).path), f)
        }
        let store = try RunStore(path: straight.appendingPathComponent("run.sqlite"))
        XCTAssertEqual(try store.runs().map(\.status), [.finished])
        XCTAssertEqual(try store.metric(run: 1, name: "eval/accuracy").map(\.step), [0, 3, 6])

        // The same run, "killed" after step 3: its only checkpoint is step 3's.
        try run(try recipe(output: resumed, steps: 3), resume: false)
        XCTAssertThrowsError(try run(try recipe(output: resumed, steps: 6), resume: false)) {
            XCTAssertTrue("\($0)".contains("--resume"), "\($0)")
        }
        try run(try recipe(output: resumed, steps: 6), resume: true)
        XCTAssertEqual(try losses(resumed), Array(reference.dropFirst(3)))
    }
}
