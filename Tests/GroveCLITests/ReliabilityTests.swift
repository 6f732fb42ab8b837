import Foundation
import XCTest
@testable import grove
@testable import GroveRun
@testable import GroveStore
import GroveTrain

/// Runs that cannot clobber each other, and checkpoints or stores that fail without losing
/// work: each test fails without the mechanism it names.
final class ReliabilityTests: XCTestCase {
    func output(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("grove-rel-\(name)-\(UUID().uuidString)/run")
    }

    func run(_ recipe: Recipe, resume: Bool = false, warnings: UnsafeMutablePointer<[String]>? = nil) throws {
        _ = try RecipeRun(recipe: recipe, resume: resume, observer: { if case .warning(let w) = $0 { warnings?.pointee.append(w) } }).run()
    }

    func losses(_ output: URL) throws -> [Double] {
        let store = try RunStore(path: output.appendingPathComponent("run.sqlite"))
        return try store.stageMetric(run: try XCTUnwrap(store.runs().last).id, stage: "0:sft", name: "train/loss").map(\.value)
    }

    /// A second run into a folder that a run holds is refused before it writes anything.
    func testSecondRunIntoOneFolderIsRefused() throws {
        let out = output("lock")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        var lock: OutputLock? = try OutputLock(folder: out)
        XCTAssertThrowsError(try run(RunnerTests.recipe(output: out, steps: 2))) {
            XCTAssertTrue("\($0)".contains("in use by another grove run (process \(getpid()))"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("run.sqlite").path))
        lock = nil
        XCTAssertNil(lock)
        XCTAssertNoThrow(try run(RunnerTests.recipe(output: out, steps: 2)))
    }

    /// A run left `running` by a process that died is marked `killed` by the next run.
    func testStaleRunningRunIsMarkedKilled() throws {
        let out = output("stale")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let dead = try RunStore(path: out.appendingPathComponent("run.sqlite"))
            .beginRun(name: "dead", recipePath: nil, recipeText: nil, seed: 0, groveVersion: "0")
        try run(RunnerTests.recipe(output: out, steps: 2))
        let runs = try RunStore(path: out.appendingPathComponent("run.sqlite")).runs()
        XCTAssertEqual(runs.first { $0.id == dead }?.status, .killed)
        XCTAssertEqual(runs.last?.status, .finished)
    }

    /// Only the newest `keep_checkpoints` checkpoints stay.
    func testKeepCheckpoints() throws {
        let out = output("keep")
        try run(RunnerTests.recipe(output: out, steps: 12, top: "keep_checkpoints: 2"))
        XCTAssertEqual(TrainingCheckpoint.all(under: out.appendingPathComponent("checkpoints")).map(\.lastPathComponent),
                       ["checkpoint-s00-0000009", "checkpoint-s00-0000012"])
    }

    /// A damaged newest checkpoint is passed over for the one before, and the resumed run still
    /// gives the uninterrupted run's losses; impossible trainer states are refused the same way.
    func testDamagedCheckpointFallsBackToTheOneBefore() throws {
        let straight = output("straight"), damaged = output("damaged")
        try run(RunnerTests.recipe(output: straight, steps: 9))
        let reference = try losses(straight)
        try run(RunnerTests.recipe(output: damaged, steps: 9))
        let checkpoints = damaged.appendingPathComponent("checkpoints")
        // Step 9's weights cut short, step 6's trainer state impossible: step 3 is the newest usable.
        let weights = checkpoints.appendingPathComponent("checkpoint-s00-0000009/model.safetensors")
        try Data(try Data(contentsOf: weights).prefix(100)).write(to: weights)
        let state = checkpoints.appendingPathComponent("checkpoint-s00-0000006/trainer_state.json")
        try String(contentsOf: state, encoding: .utf8).replacingOccurrences(of: "\"cursor\" : ", with: "\"cursor\" : -7")
            .write(to: state, atomically: true, encoding: .utf8)
        var warnings: [String] = []
        try run(RunnerTests.recipe(output: damaged, steps: 9), resume: true, warnings: &warnings)
        XCTAssertEqual(warnings.filter { $0.contains("is not usable") }.count, 2, "\(warnings)")
        XCTAssertTrue(warnings.contains { $0.contains("checkpoint-s00-0000006") && $0.contains("data position") }, "\(warnings)")
        let store = try RunStore(path: damaged.appendingPathComponent("run.sqlite"))
        XCTAssertEqual(try store.metric(run: 2, name: "train/loss").map(\.step), Array(4...9), "resumed after step 3")
        XCTAssertEqual(try losses(damaged), reference)
    }

    /// A step that cannot be written to run.sqlite stops the run, marked failed, with a checkpoint
    /// of that step (here the metrics table vanishes under the run after step 4; the recipe's own
    /// checkpoints are at steps 3 and 6).
    func testStoreFailureStopsTheRunAfterACheckpoint() throws {
        let out = output("store")
        let recipe = try RunnerTests.recipe(output: out, steps: 6)
        var dropped = false
        let runner = RecipeRun(recipe: recipe, resume: false) { event in
            if case .step(_, _, let report) = event, report.step == 4, !dropped {
                dropped = true
                let other = try! SQLiteDatabase(path: out.appendingPathComponent("run.sqlite").path)
                try! other.execute("DROP TABLE metrics")
            }
        }
        XCTAssertThrowsError(try runner.run()) { XCTAssertTrue("\($0)".contains("could not write step 5 of 0:sft to run.sqlite"), "\($0)") }
        XCTAssertNotNil(try? TrainingCheckpoint.loadState(from: out.appendingPathComponent("checkpoints/checkpoint-s00-0000005")))
        XCTAssertEqual(try RunStore(path: out.appendingPathComponent("run.sqlite")).runs().last?.status, .failed)
    }

    /// A bad row deep in a file stops `grove validate` and the run before any training, naming
    /// the file and line; GRPO prompts without what data.task's checker reads are refused too.
    func testBadRowsAreFoundBeforeTraining() throws {
        let out = output("rows")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        var lines = try String(contentsOfFile: RecipeTests.root.appendingPathComponent("Datasets/arithmetic/eval.jsonl").path, encoding: .utf8)
            .split(separator: "\n").map(String.init)
        lines[400] = #"{"prompt": "1+1=", "answer": "2"}"#  // no completion, at line 401
        let train = out.appendingPathComponent("train.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: train, atomically: true, encoding: .utf8)
        var recipe = try RunnerTests.recipe(output: out, steps: 2)
        recipe.data.train = train
        XCTAssertThrowsError(try recipe.checkRows(tokenizer: try recipe.rowTokenizer())) {
            XCTAssertTrue("\($0)".contains("\(train.path):401"), "\($0)")
        }
        XCTAssertThrowsError(try run(recipe))
        XCTAssertEqual(try RunStore(path: out.appendingPathComponent("run.sqlite")).metricNames(run: 1), [], "no step ran")

        let prompts = out.appendingPathComponent("prompts.jsonl")
        try #"{"prompt": "1+1="}"#.appending("\n").write(to: prompts, atomically: true, encoding: .utf8)
        let grpo = try RunnerTests.recipe(output: output("rows2"), steps: 1, grpoSteps: 1, prompts: prompts.path)
        XCTAssertThrowsError(try grpo.checkRows(tokenizer: try grpo.rowTokenizer())) {
            XCTAssertTrue("\($0)".contains("\(prompts.path):1: the 'arithmetic' checker (data.task) needs a text field 'answer'"), "\($0)")
        }
    }
}
