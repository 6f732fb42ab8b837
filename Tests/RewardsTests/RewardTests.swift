import Foundation
import GroveRollout
import GroveTestSupport
import Rewards
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
}
