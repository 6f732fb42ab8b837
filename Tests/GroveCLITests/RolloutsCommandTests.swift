import Foundation
import XCTest
@testable import grove
import GroveRun
@testable import GroveStore

/// `grove rollouts` and `grove rescore` on the run.sqlite of one tiny SFT → GRPO run (dynamic
/// sampling, sft_control), and what that run stored: dropped groups, the step reward, the
/// stage's rewards, stage labels, and the GRPO step metrics.
final class RolloutsCommandTests: XCTestCase {
    /// The tiny recipe's file and the one run of it the tests share.
    static var recipeFile = ""
    static var output = URL(fileURLWithPath: "/")
    static var database: String { output.appendingPathComponent("run.sqlite").path }
    static var setUpError: Error?
    static let grpoSteps = 3

    /// The RunnerTests recipe with `dynamic_sampling: 1` and `sft_control: true`; `--set`-style overrides.
    static func recipe(output: URL, overrides: [String] = []) throws -> Recipe {
        _ = FileManager.default.changeCurrentDirectoryPath(RecipeTests.root.path)
        let text = """
        name: tiny-rollouts
        seed: 5
        output_dir: \(output.path)
        model:
          init: {model_type: llama, hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 64, max_position_embeddings: 128}
          tokenizer: {train: {vocab_size: 300}}
        data: {train: Datasets/arithmetic/eval.jsonl, eval_size: 8, task: arithmetic}
        stages:
          - sft: {steps: 2, batch_size: 8, micro_batch_size: 4, lr: 3e-3, max_length: 96}
          - grpo: {steps: \(grpoSteps), prompts_per_step: 2, group_size: 4, max_new_tokens: 6, lr: 1e-3, checkpoint_every: 2, dynamic_sampling: 1, sft_control: true, rewards: [{task: {weight: 1}}, {length: {max_length: 6, weight: 0.1}}, {regex: {name: vowel, pattern: '^.*[aeiou]', weight: 0.5}}]}
        eval: {samples: 4, max_new_tokens: 8}
        """
        try FileManager.default.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
        let file = output.deletingLastPathComponent().appendingPathComponent("tiny-rollouts.yaml")
        try text.write(to: file, atomically: true, encoding: .utf8)
        recipeFile = file.path
        return try Recipe.load(path: file.path, overrides: overrides)
    }

    override class func setUp() {
        super.setUp()
        output = FileManager.default.temporaryDirectory.appendingPathComponent("grove-rollouts-\(UUID().uuidString)/run")
        do { _ = try RecipeRun(recipe: try recipe(output: output), resume: false, observer: { _ in }).run() } catch { setUpError = error }
    }

    override func setUpWithError() throws {
        if let e = Self.setUpError { throw e }
        _ = FileManager.default.changeCurrentDirectoryPath(RecipeTests.root.path)
    }

    var store: RunStore { get throws { try RunStore(path: Self.output.appendingPathComponent("run.sqlite")) } }

    /// What `body` prints to stdout.
    func captured(_ body: () throws -> Void) throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("stdout-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: file.path, contents: nil)
        let handle = try FileHandle(forWritingTo: file)
        fflush(stdout)
        let saved = dup(STDOUT_FILENO)
        dup2(handle.fileDescriptor, STDOUT_FILENO)
        defer { try? handle.close() }
        do {
            try body()
            fflush(stdout); dup2(saved, STDOUT_FILENO); close(saved)
        } catch {
            fflush(stdout); dup2(saved, STDOUT_FILENO); close(saved)
            throw error
        }
        return try String(contentsOf: file, encoding: .utf8)
    }

    // MARK: - What the run stored

    func testDroppedGroupsAreStoredAndCountedInTheStepReward() throws {
        let store = try store
        let rewards = try store.stageMetric(run: 1, stage: "1:grpo", name: "reward")
        let dropped = try store.stageMetric(run: 1, stage: "1:grpo", name: "dynamic_sampling/dropped_groups")
        XCTAssertEqual(rewards.map(\.step), Array(1...Self.grpoSteps))
        var droppedRows = 0
        for (step, reward) in rewards {
            let rows = try store.rollouts(run: 1, step: step)
            let kept = rows.filter { !$0.dropped }, set = rows.filter(\.dropped)
            XCTAssertEqual(kept.count, 2 * 4, "step \(step): prompts_per_step × group_size are trained")
            XCTAssertEqual(Double(set.count), 4 * dropped.first { $0.step == step }!.value, "step \(step): dropped rows = dropped groups × group_size")
            XCTAssertTrue(set.allSatisfy { $0.group >= 2 }, "dropped groups are numbered after the kept ones")
            let scored = rows.compactMap(\.reward)
            XCTAssertEqual(scored.count, rows.count)
            XCTAssertEqual(reward, scored.reduce(0, +) / Double(scored.count), accuracy: 1e-9,
                           "step \(step): `reward` is the mean over every stored rollout, dropped ones included")
            droppedRows += set.count
        }
        XCTAssertGreaterThan(droppedRows, 0, "the tiny model's equal-reward groups are dropped by dynamic sampling")
        XCTAssertEqual(try store.database.query("SELECT count(*) FROM rollouts WHERE dropped = 1").first?.int(0), Int64(droppedRows))
    }

    func testStageRewardsAndLabels() throws {
        let db = try store.database
        let rewards = try db.query("SELECT stage, name, kind, weight FROM stage_rewards WHERE run_id = 1 ORDER BY name")
            .map { "\($0.text(0)!) \($0.text(1)!) \($0.text(2)!) \($0.double(3)!)" }
        XCTAssertEqual(rewards, ["1:grpo arithmetic task 1.0", "1:grpo length length 0.1", "1:grpo vowel regex 0.5"])
        let stages = try db.query("SELECT label, stage_index, kind, ended_at IS NOT NULL FROM stages WHERE run_id = 1 ORDER BY started_at, label")
            .map { "\($0.text(0)!) \($0.int(1)!) \($0.text(2)!) \($0.int(3)!)" }
        XCTAssertEqual(Set(stages), ["0:sft 0 sft 1", "1:grpo 1 grpo 1", "1:sft_control 1 sft_control 1"])
    }

    func testGRPOStepMetrics() throws {
        let store = try store
        let names = ["loss", "grad_norm"] + ["arithmetic", "length", "vowel"].flatMap { ["rewards/\($0)/mean", "rewards/\($0)/std"] }
        for name in names {
            let values = try store.stageMetric(run: 1, stage: "1:grpo", name: name)
            XCTAssertEqual(values.map(\.step), Array(1...Self.grpoSteps), name)
            XCTAssertTrue(values.allSatisfy { $0.value.isFinite }, "\(name): \(values)")
        }
        XCTAssertTrue(try store.stageMetric(run: 1, stage: "1:grpo", name: "grad_norm").allSatisfy { $0.value > 0 }, "groups with signal move the model")
        // Each function's mean and std are those of its stored values at the step (every rollout, dropped too; std with n − 1, as TRL's torch.std).
        for step in 1...Self.grpoSteps {
            let values = try store.rollouts(run: 1, step: step).compactMap { $0.rewards["vowel"] ?? nil }
            let mean = values.reduce(0, +) / Double(values.count)
            let std = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
            XCTAssertGreaterThan(std, 0, "step \(step): the vowel reward varies")
            func logged(_ name: String) throws -> Double {
                try XCTUnwrap(try store.stageMetric(run: 1, stage: "1:grpo", name: name).first { $0.step == step }?.value, "\(name) at step \(step)")
            }
            XCTAssertEqual(try logged("rewards/vowel/mean"), mean, accuracy: 1e-9)
            XCTAssertEqual(try logged("rewards/vowel/std"), std, accuracy: 1e-9)
        }
    }

    // MARK: - grove rescore

    func testRescoreWithRecipeRewardEntries() throws {
        let total = try store.rollouts(run: 1).count
        for (entry, name) in [("exact_answer", "exact_answer"), ("{length: {max_length: 6}}", "length"),
                              ("{task: {checker: arithmetic}}", "arithmetic")] {
            let command = try Rescore.parse([Self.database, "--reward", entry])
            XCTAssertEqual(try command.makeReward().name, name)
            let out = try captured { try command.run() }
            let summary = try XCTUnwrap(out.split(separator: "\n").last.map(String.init), entry)
            XCTAssertTrue(summary.hasPrefix("\(name): ") && summary.hasSuffix(" of \(total) advantages change"), "\(entry): \(out)")
        }
        // One step: a line per rollout of that step, then the summary.
        let step = try captured { try Rescore.parse([Self.database, "--reward", "{length: {max_length: 6}}", "--step", "2"]).run() }
        let stepRows = try store.rollouts(run: 1, step: 2).count
        XCTAssertEqual(step.split(separator: "\n").count, stepRows + 1, step)
        XCTAssertTrue(step.contains("2/0 #0  old r="), step)
    }

    func testRescoreUnknownRewardGivesTheRegistryError() throws {
        XCTAssertThrowsError(try Rescore.parse([Self.database, "--reward", "nosuch"]).run()) {
            XCTAssertTrue("\($0)".contains("unknown reward; known: task, exact_answer, regex, length"), "\($0)")
        }
        XCTAssertThrowsError(try Rescore.parse([Self.database, "--reward", "exact_anwser"]).makeReward()) {
            XCTAssertTrue("\($0)".contains("--reward exact_anwser: unknown reward (did you mean 'exact_answer'?)"), "\($0)")
        }
        XCTAssertThrowsError(try Rescore.parse([Self.database, "--reward", "{length: {max_length: long}}"]).makeReward()) {
            XCTAssertTrue("\($0)".contains("--reward length.max_length: expected a whole number, found 'long'"), "\($0)")
        }
    }

    // MARK: - grove rollouts

    func testRolloutsSummaryStepAndPrompt() throws {
        let store = try store
        let summary = try captured { try Rollouts.parse([Self.database]).run() }
        XCTAssertTrue(summary.contains("run 1 tiny-rollouts · finished"), summary)
        let steps = try store.rolloutSteps(run: 1)
        XCTAssertEqual(steps.map(\.step), Array(1...Self.grpoSteps))
        for s in steps {
            XCTAssertTrue(summary.contains(String(format: "  %5d  %4d  %.3f", s.step, s.rollouts, s.meanReward)), "step \(s.step): \(summary)")
        }

        let rows = try store.rollouts(run: 1, step: 1)
        let stepText = try captured { try Rollouts.parse([Self.database, "--step", "1"]).run() }
        let groups = Set(rows.map(\.group))
        XCTAssertEqual(stepText.components(separatedBy: "── group ").count - 1, groups.count, stepText)
        XCTAssertEqual(stepText.components(separatedBy: "   best A=").count - 1, groups.count)
        XCTAssertTrue(stepText.contains("── group 0 · prompt \(rows[0].promptId): "), stepText)

        let promptID = rows[0].promptId
        let promptText = try captured { try Rollouts.parse([Self.database, "--prompt", "\(promptID)"]).run() }
        let sampled = Set(try store.rollouts(run: 1, promptId: promptID).map(\.step))
        XCTAssertTrue(promptText.hasPrefix("prompt \(promptID): "), promptText)
        XCTAssertEqual(promptText.split(separator: "\n").filter { $0.hasPrefix("step ") }.count, sampled.count, promptText)

        XCTAssertThrowsError(try Rollouts.parse([Self.database, "--step", "99"]).run()) {
            XCTAssertEqual("\($0)", "run 1 has no rollouts at step 99")
        }
        XCTAssertThrowsError(try Rollouts.parse([Self.database + ".missing"]).run())
    }

    // MARK: - RecipeRun.isFinished

    func testFinishedRunIsFinishedUntilTheRecipeAsksForMore() throws {
        let same = try Self.recipe(output: Self.output)
        XCTAssertTrue(RecipeRun(recipe: same, resume: true, observer: { _ in }).isFinished)
        let out = try captured { try Run.parse([Self.recipeFile, "--resume"]).run() }
        XCTAssertTrue(out.contains("this run has finished; there is nothing to resume"), out)
        XCTAssertEqual(try store.runs().count, 1, "--resume of a finished run starts no new run")

        let longer = try Self.recipe(output: Self.output, overrides: ["stages.1.grpo.steps=\(Self.grpoSteps + 2)"])
        XCTAssertFalse(RecipeRun(recipe: longer, resume: true, observer: { _ in }).isFinished, "a longer last stage can be resumed")
        _ = try Self.recipe(output: Self.output)  // the file as the other tests expect it
        XCTAssertTrue(FileManager.default.fileExists(atPath: Self.output.appendingPathComponent("checkpoints/checkpoint-s01-0000003").path),
                      "isFinished reads the last stage's step from the newest checkpoint")
        let elsewhere = try Self.recipe(output: Self.output.deletingLastPathComponent().appendingPathComponent("never-run"))
        XCTAssertFalse(RecipeRun(recipe: elsewhere, resume: true, observer: { _ in }).isFinished)
    }
}
