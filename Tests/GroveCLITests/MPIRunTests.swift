import Foundation
import XCTest
import GroveModel
import GroveTrain
@testable import GroveStore

/// `mpirun -np 2 grove run` on this machine against one process with the same global batch:
/// the same losses, rollouts and final weights within float tolerance, every rank's weights
/// bit-identical after every step (GROVE_CHECK_REPLICAS), resume across rank counts, and the
/// failures: mismatched recipes refused, a killed rank stops the job instead of hanging.
/// Skipped where Open MPI is not installed (`make setup` installs it).
final class MPIRunTests: XCTestCase {
    var work: URL!

    override func setUpWithError() throws {
        guard let found = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw XCTSkip("Open MPI is not installed (no mpirun): `make setup` installs openmpi-bin and libopenmpi-dev")
        }
        mpirun = found
        work = FileManager.default.temporaryDirectory.appendingPathComponent("grove-mpi-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    }

    override func tearDown() {
        if let work { try? FileManager.default.removeItem(at: work) }
    }

    var mpirun = ""
    /// The grove executable built beside this test bundle (Linux's `Bundle(for:)` is the build folder itself).
    var grove: String {
        let bundle = Bundle(for: MPIRunTests.self).bundleURL
        return [bundle, bundle.deletingLastPathComponent()].map { $0.appendingPathComponent("grove").path }
            .first(where: FileManager.default.isExecutableFile(atPath:)) ?? bundle.appendingPathComponent("grove").path
    }

    /// A tiny recipe: SFT, then GRPO whose rewards vary within groups (a digit anywhere; few
    /// repeated tokens), a KL term, dynamic sampling, and 3 prompts per step so the ranks' shares differ.
    static let tinyModel = "{init: {model_type: llama, hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 64, max_position_embeddings: 128}, tokenizer: {train: {vocab_size: 300}}}"

    func recipe(sftSteps: Int = 4, grpoSteps: Int = 3, rewards: String = #"[{regex: {pattern: "[0-9]"}}, {repetition: {n: 1}}]"#,
                model: String = MPIRunTests.tinyModel) throws -> String {
        let grpo = """
          - grpo: {steps: \(grpoSteps), prompts_per_step: 3, group_size: 4, max_new_tokens: 8, lr: 1e-3, beta: 0.04, dynamic_sampling: 1, checkpoint_every: 2,
                   rewards: \(rewards)}
        """
        let text = """
        name: tiny-mpi
        seed: 3
        output_dir: \(work.appendingPathComponent("unset").path)
        model: \(model)
        data: {train: Datasets/arithmetic/eval.jsonl, eval_size: 70, task: arithmetic}
        stages:
          - sft: {steps: \(sftSteps), batch_size: 7, micro_batch_size: 2, lr: 3e-3, max_length: 96, checkpoint_every: 2}
        \(grpoSteps > 0 ? grpo : "")
        eval: {samples: 70, max_new_tokens: 8}  # two batches of the evaluator's 64: one per rank
        """
        let file = work.appendingPathComponent("tiny-\(UUID().uuidString).yaml")
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    /// Runs `arguments` (grove directly, or mpirun), from the repository root, with one thread per
    /// process; fails the test if it has not ended after `timeout` seconds.
    @discardableResult
    func launch(_ executable: String, _ arguments: [String], timeout: Double = 300, whileRunning: (() throws -> Void)? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = RecipeTests.root
        var env = ProcessInfo.processInfo.environment
        // CI runs as root, which mpirun refuses unless told.
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"; env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        // In a container without ptrace rights, the shared-memory transport's single-copy mode fails.
        env["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
        env["GROVE_NUM_THREADS"] = "1"
        env["GROVE_CHECK_REPLICAS"] = "1"
        process.environment = env
        let log = work.appendingPathComponent("log-\(UUID().uuidString).txt")
        XCTAssertTrue(FileManager.default.createFile(atPath: log.path, contents: nil))
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        let ended = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in ended.signal() }
        try process.run()
        try whileRunning?()
        if ended.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            XCTFail("\(executable) \(arguments.joined(separator: " ")) was still running after \(timeout) s (hung?)")
            ended.wait()
        }
        try handle.close()
        return (process.terminationStatus, try String(contentsOf: log, encoding: .utf8))
    }

    func mpi(_ ranks: Int, _ arguments: [String]) throws -> (status: Int32, output: String) {
        try launch(mpirun, ["--oversubscribe", "-np", "\(ranks)", grove] + arguments)
    }

    func metric(_ output: URL, _ stage: String, _ name: String) throws -> [Double] {
        let store = try RunStore(path: output.appendingPathComponent("run.sqlite"))
        return try store.stageMetric(run: try XCTUnwrap(store.runs().last).id, stage: stage, name: name).map(\.value)
    }

    /// The steps the newest run of `output` trained itself (not those of the run it resumed).
    func ownSteps(_ output: URL) throws -> [Int] {
        let store = try RunStore(path: output.appendingPathComponent("run.sqlite"))
        return try store.metric(run: try XCTUnwrap(store.runs().last).id, name: "train/loss").map(\.step)
    }

    func assertClose(_ a: [Double], _ b: [Double], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        for (x, y) in zip(a, b) {
            XCTAssertEqual(x, y, accuracy: 1e-6 + 1e-4 * abs(x), "\(what): \(a) vs \(b)", file: file, line: line)
        }
    }

    /// Two ranks give one process's losses, metrics, rollouts and final weights; only rank 0 writes.
    func testTwoRanksMatchOneProcess() throws {
        try assertTwoRanksMatchOneProcess(try recipe()) { try Transformer.load(from: $0) }
    }

    /// The same with a LoRA adapter (its dropout off: with it, each rank draws its own masks).
    func testTwoRanksMatchOneProcessWithLoRA() throws {
        let base = LoRARunTests.base
        try assertTwoRanksMatchOneProcess(try recipe(model: "{path: \(base.path), lora: {r: 4, alpha: 8, target_modules: [q_proj, v_proj, down_proj]}}")) {
            try Transformer.load(adapter: $0, base: base)
        }
    }

    func assertTwoRanksMatchOneProcess(_ r: String, load: (URL) throws -> Transformer) throws {
        let one = work.appendingPathComponent("one"), two = work.appendingPathComponent("two")
        let single = try launch(grove, ["run", r, "--set", "output_dir=\(one.path)"])
        XCTAssertEqual(single.status, 0, single.output)
        let pair = try mpi(2, ["run", r, "--set", "output_dir=\(two.path)"])
        XCTAssertEqual(pair.status, 0, pair.output)
        XCTAssertTrue(pair.output.contains("2 ranks"), pair.output)

        for (stage, name) in [("0:sft", "train/loss"), ("0:sft", "train/grad_norm"), ("1:grpo", "loss"), ("1:grpo", "grad_norm"),
                              ("1:grpo", "kl"), ("1:grpo", "entropy"), ("1:grpo", "reward"), ("0:sft", "eval/loss"), ("1:grpo", "eval/loss"),
                              ("1:grpo", "eval/accuracy")] {
            assertClose(try metric(two, stage, name), try metric(one, stage, name), "\(stage) \(name)")
        }
        XCTAssertGreaterThan(try metric(one, "1:grpo", "grad_norm").max() ?? 0, 0, "GRPO had signal to train on")
        // Every rank's rollouts reach rank 0's store, as one process stores them.
        let stored = { (dir: URL) throws -> [String] in
            let store = try RunStore(path: dir.appendingPathComponent("run.sqlite"))
            return try store.rollouts(run: try XCTUnwrap(store.runs().last).id).map { "\($0.step) \($0.group) \($0.sample) \($0.completionIds) \($0.advantage)" }
        }
        let reference = try stored(one)
        XCTAssertGreaterThanOrEqual(reference.count, 3 * 3 * 4)
        XCTAssertEqual(try stored(two), reference)
        XCTAssertEqual(try RunStore(path: two.appendingPathComponent("run.sqlite")).runs().count, 1, "rank 1 wrote no run of its own")

        let a = try load(two.appendingPathComponent("final")), b = try load(one.appendingPathComponent("final"))
        XCTAssertEqual(a.trainableParameters.map(\.0), b.trainableParameters.map(\.0))
        for ((name, x), (_, y)) in zip(a.trainableParameters, b.trainableParameters) {
            let diff = zip(x.values, y.values).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThan(diff, 1e-5, "final \(name)")
        }
    }

    /// A run checkpointed by two ranks resumes in one process, and one process's run resumes on
    /// two ranks, each giving the uninterrupted run's losses.
    func testResumeWithAnotherNumberOfRanks() throws {
        let r = try recipe(sftSteps: 4, grpoSteps: 0)
        let straight = work.appendingPathComponent("straight")
        XCTAssertEqual(try launch(grove, ["run", r, "--set", "output_dir=\(straight.path)", "--set", "stages.0.sft.steps=6"]).status, 0)
        let reference = try metric(straight, "0:sft", "train/loss")

        let twoThenOne = work.appendingPathComponent("two-then-one"), oneThenTwo = work.appendingPathComponent("one-then-two")
        XCTAssertEqual(try mpi(2, ["run", r, "--set", "output_dir=\(twoThenOne.path)"]).status, 0)
        let resumed = try launch(grove, ["run", r, "--set", "output_dir=\(twoThenOne.path)", "--set", "stages.0.sft.steps=6", "--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertEqual(try ownSteps(twoThenOne), [5, 6])
        assertClose(try metric(twoThenOne, "0:sft", "train/loss"), reference, "steps 1-4 on 2 ranks, 5-6 on 1")

        XCTAssertEqual(try launch(grove, ["run", r, "--set", "output_dir=\(oneThenTwo.path)"]).status, 0)
        let resumedOnTwo = try mpi(2, ["run", r, "--set", "output_dir=\(oneThenTwo.path)", "--set", "stages.0.sft.steps=6", "--resume"])
        XCTAssertEqual(resumedOnTwo.status, 0, resumedOnTwo.output)
        XCTAssertEqual(try ownSteps(oneThenTwo), [5, 6])
        assertClose(try metric(oneThenTwo, "0:sft", "train/loss"), reference, "steps 1-4 on 1 process, 5-6 on 2 ranks")
    }

    /// Ranks started with different recipes (here another seed) are refused before any training,
    /// naming the rank that differs.
    func testMismatchedRecipesAreRefused() throws {
        let r = try recipe(), out = work.appendingPathComponent("mismatch").path
        let run = try launch(mpirun, ["--oversubscribe", "-np", "1", grove, "run", r, "--set", "output_dir=\(out)", ":",
                                      "-np", "1", grove, "run", r, "--set", "output_dir=\(out)", "--set", "seed=4"], timeout: 120)
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.output.contains("rank 1 runs another recipe than rank 0"), run.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/run.sqlite"), "refused before run.sqlite was written")
    }

    /// A rank whose step fails (here its reward program, on rank 1 only) ends the job at once,
    /// its message naming it, while rank 0 waits for its rollouts.
    func testFailingRankStopsTheJobNamingItself() throws {
        let command = "test $OMPI_COMM_WORLD_RANK != 1 || { echo broken on purpose >&2; exit 3; }; while read -r line; do echo 0.5; done"
        let r = try recipe(sftSteps: 2, grpoSteps: 3, rewards: "[{external: {command: \"\(command)\"}}]")
        let run = try mpi(2, ["run", r, "--set", "output_dir=\(work.appendingPathComponent("failing").path)"])
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.output.contains("grove: rank 1 of 2 stopped the job: reward 'external'"), run.output)
        XCTAssertTrue(run.output.contains("broken on purpose"), run.output)
    }

    /// A rank killed mid-run stops the others (no hang); mpirun's message names it, and rank 0
    /// records its run as stopped by mpirun, its checkpoints kept for --resume.
    func testKilledRankStopsTheJob() throws {
        let r = try recipe(sftSteps: 100_000, grpoSteps: 0), out = work.appendingPathComponent("killed")
        let pidFile = work.appendingPathComponent("rank1.pid").path
        let args = ["run", r, "--set", "output_dir=\(out.path)"]
        // Rank 1 is a shell that writes its pid and becomes grove, so the test can kill it.
        let run = try launch(mpirun, ["--oversubscribe", "-np", "1", grove] + args
                                     + [":", "-np", "1", "/bin/sh", "-c", "echo $$ > \(pidFile); exec \(grove) \(args.joined(separator: " "))"],
                             timeout: 120) {
            // Kill once training is under way (a checkpoint every 2 steps).
            let deadline = Date().addingTimeInterval(100)
            while TrainingCheckpoint.all(under: out.appendingPathComponent("checkpoints")).count < 2, Date() < deadline { usleep(100_000) }
            let pid = try XCTUnwrap(Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
            kill(pid, SIGKILL)
        }
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.output.contains("process rank 1"), run.output)
        let last = try XCTUnwrap(try RunStore(path: out.appendingPathComponent("run.sqlite")).runs().last)
        XCTAssertEqual(last.status, .interrupted)
        XCTAssertTrue(last.error?.contains("rank 0 of 2 stopped by mpirun") == true, "\(String(describing: last.error))")
    }
}
