import Foundation
import GroveRollout
import GroveTestSupport
@testable import Rewards
import XCTest

final class BuiltInRewardTests: XCTestCase {
    func input(_ completion: String, ids: [Int32] = [], row: [String: Any] = [:]) -> RewardInput {
        RewardInput(prompt: "p", completion: completion, completionIds: ids, row: row)
    }

    func testExactAnswerExtractions() throws {
        let gsm = ExactAnswerReward()
        let rows: [[String: Any]] = [["answer": "He has 3 + 4 = 7 apples.\n#### 7"], ["answer": "1,234"], ["other": 1]]
        let out = try gsm.score([input("so\n#### 7", row: rows[0]), input("#### 1234", row: rows[1]), input("#### 7", row: rows[2])])
        XCTAssertEqual(out.values, [1, 1, nil], "no reference field: not applicable")
        XCTAssertEqual(try gsm.score([input("7", row: rows[0])]).values, [0])
        let boxed = ExactAnswerReward(extraction: .boxed)
        XCTAssertEqual(try boxed.score([input("thus \\boxed{7}", row: rows[0]), input("\\boxed{8}", row: rows[0])]).values, [1, 0])
        let last = ExactAnswerReward(extraction: .lastNumber, tolerance: 0.01)
        XCTAssertEqual(try last.score([input("about 7.001 apples", row: rows[0]), input("none", row: rows[0])]).values, [1, 0])
    }

    func testTaskFormatLengthRepetition() throws {
        let task = TaskReward(task: .countdown)
        XCTAssertEqual(try task.score([input("#### 2*3", row: ["numbers": [2, 3], "target": 6]),
                                       input("#### 2+3", row: ["numbers": [2, 3], "target": 6])]).values, [1, 0])
        let format = try FormatReward(pattern: #"^.*\n#### -?\d+$"#)
        XCTAssertEqual(try format.score([input("steps\nmore\n#### 12"), input("#### 12")]).values, [1, 0])
        XCTAssertThrowsError(try FormatReward(pattern: "(")) { XCTAssertTrue("\($0)".contains("format"), "\($0)") }
        let overlong = LengthReward(shape: .softOverlong(maxLength: 10, cache: 4))
        XCTAssertEqual(try overlong.score([6, 8, 10, 11].map { input("", ids: [Int32](repeating: 1, count: $0)) }).values, [0, -0.5, -1, -1])
        let repetition = RepetitionReward(n: 2, maxPenalty: -1)
        XCTAssertEqual(try repetition.score([input("", ids: [1, 2, 1, 2, 1]), input("", ids: [1, 2, 3]), input("", ids: [1])]).values,
                       [-0.5, 0, 0])
    }

    func testWeightedRewards() throws {
        let combined = WeightedRewards([(TaskReward(task: .arithmetic), 1), (LengthReward(shape: .linear(maxLength: 10)), 0.5)])
        let (perFunction, _) = try combined.score([input("#### 4", ids: [1, 2], row: ["answer": "4"])])
        XCTAssertEqual(perFunction[0], [1, -0.2])
        XCTAssertEqual(combined.weights, [1, 0.5])
    }
}

/// External reward programs: the happy path, and every way a program can fail.
final class ExternalProgramRewardTests: XCTestCase {
    let batch = [RewardInput(prompt: "1+1=", completion: "#### 2", completionIds: [5, 6], row: ["answer": "2"]),
                 RewardInput(prompt: "2+2=", completion: "#### 5", completionIds: [7], row: ["answer": "4"])]

    func program(_ body: String) throws -> String {
        let url = Fixtures.temporaryDirectory().appendingPathComponent("reward.py")
        try body.write(to: url, atomically: true, encoding: .utf8)
        return "python3 \(url.path)"
    }

    func testTRLStyleExample() throws {
        let command = "python3 \(Fixtures.repoRoot.appendingPathComponent("Rewards/examples/trl_style_reward.py").path)"
        let out = try ExternalProgramReward(name: "trl", command: command).score(batch)
        XCTAssertEqual(out.values, [1, 0])
    }

    func testNullAndExtraColumns() throws {
        let command = try program("""
        import json, sys
        items = [json.loads(l) for l in sys.stdin]
        print(json.dumps({"reward": 0.5, "len": len(items[0]["completion_ids"])}))
        print("null")
        """)
        let out = try ExternalProgramReward(name: "x", command: command).score(batch)
        XCTAssertEqual(out.values, [0.5, nil])
        XCTAssertEqual(out.extras["len"]!, [2, nil])
    }

    func testCrashQuotesStderr() throws {
        let command = try program("import sys\nsys.stdin.read()\nraise RuntimeError('reward model exploded')\n")
        XCTAssertThrowsError(try ExternalProgramReward(name: "crashy", command: command).score(batch)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("crashy") && text.contains("exited with status 1") && text.contains("reward model exploded"), text)
        }
    }

    func testHangIsKilledAfterTheTimeout() throws {
        let command = try program("import time\ntime.sleep(60)\n")
        let start = Date()
        XCTAssertThrowsError(try ExternalProgramReward(name: "slow", command: command, timeout: 1).score(batch)) { error in
            XCTAssertTrue("\(error)".contains("did not answer within 1"), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
    }

    func testInvalidJSONAndWrongCount() throws {
        let junk = try program("import sys\nsys.stdin.read()\nprint('1.0')\nprint('not json')\n")
        XCTAssertThrowsError(try ExternalProgramReward(name: "j", command: junk).score(batch)) { XCTAssertTrue("\($0)".contains("line 2"), "\($0)") }
        let short = try program("import sys\nsys.stdin.read()\nprint('1.0')\n")
        XCTAssertThrowsError(try ExternalProgramReward(name: "c", command: short).score(batch)) { XCTAssertTrue("\($0)".contains("1 lines for 2"), "\($0)") }
    }

    func testFallbackValueInsteadOfError() throws {
        let command = try program("import sys\nsys.exit(3)\n")
        var warnings: [String] = []
        var reward = ExternalProgramReward(name: "f", command: command, fallback: -1)
        reward.onWarning = { warnings.append($0) }
        XCTAssertEqual(try reward.score(batch).values, [-1, -1])
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings[0].contains("status 3"))
    }

    /// 16 prompts whose rows are ~20 KB: more than a pipe holds, so a program that stops reading blocks Grove's writes.
    var bigBatch: [RewardInput] {
        (0..<16).map { RewardInput(prompt: "p\($0)", completion: "c", completionIds: [1], row: ["text": String(repeating: "x", count: 20_000)]) }
    }

    func testProgramThatStopsReadingIsAnErrorNotSIGPIPE() throws {
        let command = "exec 0<&-; sleep 0.5; for i in $(seq 16); do echo 0.5; done"
        XCTAssertThrowsError(try ExternalProgramReward(name: "deaf", command: command).score(bigBatch)) { error in
            XCTAssertTrue("\(error)".contains("deaf") && "\(error)".contains("stopped reading its input"), "\(error)")
        }
        var warnings: [String] = []
        var reward = ExternalProgramReward(name: "deaf", command: command, fallback: 0)
        reward.onWarning = { warnings.append($0) }
        XCTAssertEqual(try reward.score(bigBatch).values, [Double?](repeating: 0, count: 16))
        XCTAssertEqual(warnings.count, 1)
        for _ in 0..<5 {
            XCTAssertThrowsError(try ExternalProgramReward(name: "t", command: "true").score(bigBatch))
        }
    }

    /// Grove writes stdin while it reads stdout and stderr: a program that talks before it listens does not deadlock.
    func testProgramThatWritesBeforeReadingDoesNotDeadlock() throws {
        let command = try program("""
        import sys
        sys.stderr.write("x" * 300000)
        items = sys.stdin.readlines()
        print("\\n".join("1" for _ in items))
        """)
        XCTAssertEqual(try ExternalProgramReward(name: "chatty", command: command, timeout: 20).score(bigBatch).values.count, 16)
    }

    /// Whether a process exists and is not a zombie.
    func isAlive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
        return !stat.contains(") Z ")
    }

    func pids(in dir: URL) throws -> [Int32] {
        try ["child", "grandchild"].map { Int32(try String(contentsOf: dir.appendingPathComponent($0), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines))! }
    }

    func testTimeoutKillsTheProgramAndItsChildren() throws {
        let dir = Fixtures.temporaryDirectory()
        let command = "sleep 30 & echo $! > \(dir.path)/grandchild; echo $$ > \(dir.path)/child; wait"
        let start = Date()
        XCTAssertThrowsError(try ExternalProgramReward(name: "slow", command: command, timeout: 1).score(batch))
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        Thread.sleep(forTimeInterval: 0.2)
        for pid in try pids(in: dir) { XCTAssertFalse(isAlive(pid), "\(pid) outlived the timeout") }
    }

    /// A background child that keeps the program's stdout open does not keep Grove waiting; it ends with the program.
    func testChildrenLeftBehindEndWithTheProgram() throws {
        let dir = Fixtures.temporaryDirectory()
        let command = "cat > /dev/null; sleep 30 & echo $! > \(dir.path)/grandchild; echo $$ > \(dir.path)/child; echo 1; echo 0"
        let start = Date()
        XCTAssertEqual(try ExternalProgramReward(name: "leaky", command: command, timeout: 20).score(batch).values, [1, 0])
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        Thread.sleep(forTimeInterval: 0.2)
        for pid in try pids(in: dir) { XCTAssertFalse(isAlive(pid), "\(pid) outlived the program") }
    }

    func testKillAllEndsRunningPrograms() throws {
        let dir = Fixtures.temporaryDirectory()
        let command = "sleep 30 & echo $! > \(dir.path)/grandchild; echo $$ > \(dir.path)/child; wait"
        let done = DispatchSemaphore(value: 0)
        let reward = ExternalProgramReward(name: "stuck", command: command, timeout: 60)
        let batch = self.batch
        Thread { _ = try? reward.score(batch); done.signal() }.start()
        while (try? pids(in: dir)) == nil { Thread.sleep(forTimeInterval: 0.05) }
        ExternalProgramReward.killAll()
        XCTAssertEqual(done.wait(timeout: .now() + 5), .success)
        Thread.sleep(forTimeInterval: 0.2)
        for pid in try pids(in: dir) { XCTAssertFalse(isAlive(pid), "\(pid) outlived killAll") }
    }

    func testInvalidRewardValues() throws {
        for (line, expected) in [(#"{"reward": "abc"}"#, "not a number"), (#"{"reward": true}"#, "not a number"),
                                 (#"{"score": 1}"#, "no \"reward\""), ("1e308", "too large"), (#"{"reward": -1e16}"#, "too large"),
                                 ("1e999", "not JSON"), ("NaN", "not JSON"), ("true", "not a number")] {
            let command = "cat > /dev/null; echo 1; echo '\(line)'"
            XCTAssertThrowsError(try ExternalProgramReward(name: "odd", command: command).score(batch), line) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("odd") && text.contains("line 2") && text.contains(command) && text.contains(expected), text)
            }
        }
        XCTAssertEqual(try ExternalProgramReward(name: "ok", command: #"cat > /dev/null; echo '{"reward": null}'; echo -1e15"#)
            .score(batch).values, [nil, -1e15])
    }

    func testWeightedRewardsRejectNonFiniteValues() {
        struct Broken: Reward {
            let name = "broken"
            let value: Double
            func score(_ batch: [RewardInput]) throws -> RewardOutput { RewardOutput(values: batch.map { _ in value }) }
        }
        for value in [Double.nan, .infinity, -1e300] {
            XCTAssertThrowsError(try WeightedRewards([(Broken(value: value), 1)]).score(batch)) { error in
                XCTAssertTrue("\(error)".contains("broken") && "\(error)".contains("completion 1"), "\(error)")
            }
        }
    }
}
