import Foundation
import GroveTestSupport
import XCTest
@testable import GroveTasks

final class ArithmeticTaskTests: XCTestCase {
    func testDeterministicAndSeedDependent() {
        XCTAssertEqual(ArithmeticTask.generate(count: 50, seed: 3), ArithmeticTask.generate(count: 50, seed: 3))
        XCTAssertNotEqual(ArithmeticTask.generate(count: 50, seed: 3), ArithmeticTask.generate(count: 50, seed: 4))
    }

    /// Every generated solution passes its checker, and every step line is arithmetically true.
    func testSolutionsAreCorrectStepByStep() throws {
        for row in ArithmeticTask.generate(count: 3000, seed: 9) {
            XCTAssertTrue(ArithmeticTask.isCorrect(completion: row.completion, answer: row.answer), row.completion)
            for line in row.completion.split(separator: "\n") {
                // "a+b+c=s …", "a-b-c=d …" (d is mod 10 after a borrow) or "a*b+c=s …"
                guard let eq = line.firstIndex(of: "="), !line.hasPrefix("c"), !line.hasPrefix("="), !line.hasPrefix("#") else { continue }
                let lhs = line[..<eq], rhs = Int(line[line.index(after: eq)...].split(separator: " ")[0])!
                let n = lhs.split(whereSeparator: { "+-*".contains($0) }).map { Int($0)! }
                if lhs.contains("*") { XCTAssertEqual(n[0] * n[1] + n[2], rhs, String(line)) }
                else if lhs.contains("+") { XCTAssertEqual(n[0] + n[1] + n[2], rhs, String(line)) }
                else if lhs.contains("-") { XCTAssertEqual((n[0] - n[1] - n[2] + 10) % 10, rhs, String(line)) }
            }
            let prompt = row.prompt.dropLast()
            let op = prompt.first { "+-*".contains($0) }!
            let parts = prompt.split(separator: op).map { Int($0)! }
            XCTAssertEqual(Int(row.answer), op == "+" ? parts[0] + parts[1] : op == "-" ? parts[0] - parts[1] : parts[0] * parts[1])
        }
    }

    func testCheckerRejectsWrongAndMissingAnswers() {
        XCTAssertTrue(ArithmeticTask.isCorrect(completion: "steps\n#### 632", answer: "632"))
        XCTAssertTrue(ArithmeticTask.isCorrect(completion: "#### -17 ", answer: "-17"))
        XCTAssertFalse(ArithmeticTask.isCorrect(completion: "#### 633", answer: "632"))
        XCTAssertFalse(ArithmeticTask.isCorrect(completion: "632", answer: "632"))
        XCTAssertFalse(ArithmeticTask.isCorrect(completion: "#### 632abc", answer: "632"))
        XCTAssertFalse(ArithmeticTask.isCorrect(completion: "#### 1\n#### ", answer: "1"))
    }

    func testCommittedEvalNeverInTrain() throws {
        let root = Fixtures.repoRoot
        for task in ["arithmetic", "countdown"] {
            func prompts(_ f: String) throws -> Set<String> {
                let text = try String(contentsOf: root.appendingPathComponent("Datasets/\(task)/\(f)"), encoding: .utf8)
                return Set(try text.split(separator: "\n").map { try JSONDecoder().decode(TaskRow.self, from: Data($0.utf8)).prompt })
            }
            let train = try prompts("train.jsonl"), eval = try prompts("eval.jsonl")
            XCTAssertEqual(eval.count, 500)
            XCTAssertTrue(train.isDisjoint(with: eval), task)
        }
    }

    /// The quickstart's split: demos.jsonl is the first 1,000 training rows, then the next 1,000
    /// with the answer alone; prompts.jsonl holds the later training rows of the harder levels,
    /// without their worked solutions.
    func testCommittedDemosAndPrompts() throws {
        let dir = Fixtures.repoRoot.appendingPathComponent("Datasets/arithmetic")
        func lines(_ f: String) throws -> [String] {
            try String(contentsOf: dir.appendingPathComponent(f), encoding: .utf8).split(separator: "\n").map(String.init)
        }
        let train = try lines("train.jsonl"), demos = try lines("demos.jsonl"), prompts = try lines("prompts.jsonl")
        func row(_ line: String) throws -> TaskRow { try JSONDecoder().decode(TaskRow.self, from: Data(line.utf8)) }
        XCTAssertEqual(demos.count, 2000)
        XCTAssertEqual(Array(demos.prefix(1000)), Array(train.prefix(1000)))
        for (line, original) in zip(demos.dropFirst(1000), train.dropFirst(1000)) {
            let demo = try row(line), full = try row(original)
            XCTAssertEqual(demo.completion, "#### \(full.answer)")
            XCTAssertEqual(demo.prompt, full.prompt)
            XCTAssertTrue(ArithmeticTask.isCorrect(completion: demo.completion, answer: full.answer))
        }
        let later = try train.dropFirst(2000).map(row)
        let hard: Set = ["add4", "add5", "sub3", "sub4", "mul3"]
        let expected = later.filter { hard.contains($0.level) }
        XCTAssertEqual(prompts.count, expected.count)
        for (line, row) in zip(prompts, expected) {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            XCTAssertNil(object["completion"], "GRPO prompts carry no worked solution")
            XCTAssertEqual(object["prompt"] as? String, row.prompt)
            XCTAssertEqual(object["answer"] as? String, row.answer)
            XCTAssertEqual(object["level"] as? String, row.level)
        }
    }
}

final class CountdownTaskTests: XCTestCase {
    func testGeneratedSolutionsPass() {
        let rows = CountdownTask.generate(count: 2000, seed: 5)
        XCTAssertEqual(rows, CountdownTask.generate(count: 2000, seed: 5))
        for row in rows {
            XCTAssertTrue(CountdownTask.isCorrect(completion: row.completion, numbers: row.numbers!, target: row.target!), row.completion)
        }
    }

    func testAnyValidEquationCountsAndInvalidOnesDoNot() {
        let numbers = [19, 36, 55, 7], target = 65
        func check(_ s: String) -> Bool { CountdownTask.isCorrect(completion: "#### " + s, numbers: numbers, target: target) }
        XCTAssertTrue(check("55+36-19-7"))
        XCTAssertTrue(check("(55 - 19) + 36 - 7"))
        XCTAssertTrue(check("7+55+36-19-(19-19)") == false, "19 used three times")
        XCTAssertFalse(check("55+36-19"), "7 missing")
        XCTAssertFalse(check("55+36-19-7-1+1"), "numbers not given")
        XCTAssertFalse(check("55+36-19+7"), "wrong value")
        XCTAssertFalse(check("55/(7-7)+36-19"), "division by zero")
        XCTAssertFalse(check("55+36-19-7)"), "unbalanced")
        XCTAssertTrue(CountdownTask.isCorrect(completion: "#### 12/8*6", numbers: [12, 8, 6], target: 9), "exact fractions")
        XCTAssertFalse(CountdownTask.isCorrect(completion: "no answer", numbers: [1], target: 1))
    }

    func testRandomGarbageNeverCrashes() {
        var x: UInt64 = 1
        let alphabet = Array("0123456789+-*/()x÷× ####\n")
        for _ in 0..<5000 {
            var s = ""
            for _ in 0..<(x % 30) { x = x &* 6364136223846793005 &+ 1; s.append(alphabet[Int((x >> 33) % UInt64(alphabet.count))]) }
            _ = CountdownTask.isCorrect(completion: s, numbers: [1, 2, 3], target: 6)
        }
        XCTAssertFalse(CountdownTask.isCorrect(completion: "#### 99999999999999999999*9", numbers: [9], target: 9))
    }
}

final class LastNumberTaskTests: XCTestCase {
    func testLastNumberReadsFreeFormAnswers() {
        XCTAssertEqual(lastNumber("45 + 38 = 83."), 83)
        XCTAssertEqual(lastNumber("It is -1,234.5 in total"), -1234.5)
        XCTAssertEqual(lastNumber("about $1,000, not 3"), 3)
        XCTAssertNil(lastNumber("no digits here"))
    }

    func testCheckerComparesTheLastNumberWithTheAnswer() {
        let task = TaskKind.lastNumber
        XCTAssertTrue(task.isCorrect("45 + 38 = 83. The answer is 83.", row: ["answer": "83"]))
        XCTAssertTrue(task.isCorrect("so 1,234", row: ["answer": 1234]))
        XCTAssertFalse(task.isCorrect("83, or maybe 84", row: ["answer": "83"]))
        XCTAssertFalse(task.isCorrect("no idea", row: ["answer": "83"]))
        XCTAssertFalse(task.isCorrect("83", row: [:]))
    }

    func testMissingReference() {
        XCTAssertNil(TaskKind.lastNumber.missingReference(in: ["answer": "83"]))
        XCTAssertNil(TaskKind.lastNumber.missingReference(in: ["answer": 83]))
        XCTAssertNotNil(TaskKind.lastNumber.missingReference(in: ["answer": "eighty-three"]))
        XCTAssertNotNil(TaskKind.lastNumber.missingReference(in: ["target": 83]))
    }
}
