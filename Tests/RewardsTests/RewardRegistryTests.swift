import Foundation
import GroveConfig
import GroveRollout
import GroveTestSupport
import Rewards
import XCTest

/// `RewardRegistry`: every built-in reads from a recipe entry, mistakes are located errors with
/// hints, and the worked example of Rewards/README.md is the code the suite compiles.
final class RewardRegistryTests: XCTestCase {
    let reader = RecipeReader(file: "r.yaml")

    /// `{key: {field: value, …}}` as the YAML parser gives it, at `line`.
    func entry(_ key: String, _ fields: [(String, String)] = [], line: Int = 7) -> RecipeValue {
        .mapping([(key, .mapping(fields.map { ($0.0, RecipeValue.scalar($0.1, line: line)) }, line: line))], line: line)
    }

    func read(_ value: RecipeValue, among kinds: [any RecipeReward.Type] = RewardRegistry.all) throws -> RewardSpec {
        try RewardRegistry.read(value, path: "rewards.0", reader, among: kinds)
    }

    func message(_ body: () throws -> Any) -> String {
        do { _ = try body(); return "no error" } catch { return "\(error)" }
    }

    func input(_ completion: String, ids: [Int32] = [1, 2], row: [String: Any] = [:]) -> RewardInput {
        RewardInput(prompt: "p", completion: completion, completionIds: ids, row: row)
    }

    /// Each key with its required settings, and the name the built reward reports.
    func testEveryKeyReadsFromAMinimalEntry() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("rm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let minimal: [String: (fields: [(String, String)], name: String?)] = [
            "task": ([], "arithmetic"), "exact_answer": ([], "exact_answer"), "regex": ([("pattern", "^a")], "format"),
            "length": ([("max_length", "4")], "length"), "repetition": ([], "repetition"),
            "external": ([("command", "python3 r.py")], "external"),
            "reward_model": ([("path", folder.path)], nil),  // loads the model when built: read only
        ]
        XCTAssertEqual(Set(RewardRegistry.keys), Set(minimal.keys), "a new built-in needs its minimal entry here")
        XCTAssertEqual(RewardRegistry.keys.count, Set(RewardRegistry.keys).count, "keys are unique")
        for key in RewardRegistry.keys {
            let (fields, name) = minimal[key]!
            let spec = try read(entry(key, fields))
            XCTAssertEqual(spec.key, key)
            XCTAssertEqual(spec.weight, 1, "\(key): weight defaults to 1")
            if let name { XCTAssertEqual(try spec.build(RewardContext(task: .arithmetic)).name, name, key) }
            if !fields.isEmpty {
                XCTAssertTrue(message { try self.read(self.entry(key)) }.contains("rewards.0.\(key).\(fields[0].0): missing required key"), key)
            }
        }
        // A bare key is the same entry with no settings.
        XCTAssertEqual(try read(.scalar("exact_answer", line: 2)).key, "exact_answer")
        XCTAssertEqual(try read(entry("length", [("max_length", "4"), ("weight", "0.25")])).weight, 0.25)
        // `task` without a checker needs data.task, and says so when the run builds it.
        XCTAssertEqual(message { try self.read(self.entry("task")).build(RewardContext()) },
                       "r.yaml:7: rewards.0.task.checker: a 'task' reward needs data.task or its own 'checker' (arithmetic, countdown, gsm8k, last_number)")
    }

    func testUnknownRewardSuggestsTheNearestKey() {
        XCTAssertEqual(message { try self.read(.scalar("exact_anwser", line: 5)) },
                       "r.yaml:5: rewards.0.exact_anwser: unknown reward (did you mean 'exact_answer'?); known: "
                       + RewardRegistry.keys.joined(separator: ", "))
        XCTAssertTrue(message { try self.read(.sequence([], line: 5)) }.hasPrefix("r.yaml:5: rewards.0: a reward is one of task, "))
        XCTAssertTrue(message { try self.read(.mapping([], line: 5)) }.hasPrefix("r.yaml:5: rewards.0: a reward is one of"),
                      "an entry names exactly one reward")
    }

    func testBadFieldsAreLocated() {
        XCTAssertEqual(message { try self.read(self.entry("length", [("max_length", "many")], line: 9)) },
                       "r.yaml:9: rewards.0.length.max_length: expected a whole number, found 'many'")
        XCTAssertEqual(message { try self.read(self.entry("length", [("max_lenght", "4")], line: 9)) },
                       "r.yaml:9: rewards.0.length.max_lenght: unknown key (did you mean 'max_length'?); valid keys: max_length, cache, weight")
        XCTAssertEqual(message { try self.read(self.entry("exact_answer", [("extraction", "boxd")], line: 4)) },
                       "r.yaml:4: rewards.0.exact_answer.extraction: unknown value 'boxd' (did you mean 'boxed'?); one of: gsm8k, boxed, last_number")
        XCTAssertEqual(message { try self.read(self.entry("task", [("weight", "heavy")], line: 3)) },
                       "r.yaml:3: rewards.0.task.weight: expected a number, found 'heavy'")
        XCTAssertEqual(message { try self.read(self.entry("regex", [("pattern", "(")], line: 6)) },
                       "r.yaml:6: rewards.0.regex.pattern: not a valid regular expression")
    }

    // MARK: - The worked example of Rewards/README.md

    static let readme = Fixtures.repoRoot.appendingPathComponent("Rewards/README.md")
    static let exampleFile = Fixtures.repoRoot.appendingPathComponent("Tests/RewardsTests/WorkedExampleReward.swift")

    /// The ```LANG blocks of the README's "Adding a Swift reward" section.
    func exampleBlocks(_ language: String) throws -> [String] {
        let text = try String(contentsOf: Self.readme, encoding: .utf8)
        let section = try XCTUnwrap(text.components(separatedBy: "\n## Adding a Swift reward\n").dropFirst().first)
            .components(separatedBy: "\n## ")[0]
        var blocks: [String] = [], current: [String]?
        for line in section.components(separatedBy: "\n") {
            if current == nil, line == "```" + language { current = [] } else if current != nil, line == "```" {
                blocks.append(current!.joined(separator: "\n") + "\n"); current = nil
            } else { current?.append(line) }
        }
        return blocks
    }

    func testReadmeExampleIsTheCompiledCode() throws {
        let swift = try exampleBlocks("swift")
        XCTAssertEqual(swift.count, 2, "the reward's file, then the registry line")
        let compiled = try String(contentsOf: Self.exampleFile, encoding: .utf8)
        let code = try XCTUnwrap(compiled.range(of: "import GroveConfig\n").map { String(compiled[$0.lowerBound...]) })
        XCTAssertEqual(swift.first, code, "Rewards/README.md's example and Tests/RewardsTests/WorkedExampleReward.swift differ")
        XCTAssertEqual(swift.last?.trimmingCharacters(in: .whitespacesAndNewlines), "\(KeywordReward.self).self,")
        let yaml = try XCTUnwrap(exampleBlocks("yaml").first)
        XCTAssertTrue(yaml.contains("- keyword: {word: \"####\", name: answer_marker, weight: 0.2}"), yaml)
    }

    /// The README's recipe entry, read through the registry with the example added, scores a batch.
    func testExampleRewardReadsAndScores() throws {
        let kinds: [any RecipeReward.Type] = RewardRegistry.all + [KeywordReward.self]
        XCTAssertTrue(message { try self.read(self.entry("keyword", [("word", "####")])) }.contains("unknown reward"),
                      "the example is not a built-in")
        let spec = try read(entry("keyword", [("word", "####"), ("name", "answer_marker"), ("weight", "0.2")]), among: kinds)
        XCTAssertEqual(spec.key, "keyword")
        XCTAssertEqual(spec.weight, 0.2)
        let reward = try spec.build(RewardContext())
        XCTAssertEqual(reward.name, "answer_marker")
        XCTAssertEqual(try reward.score([input("2 + 2\n#### 4"), input("4"), input("")]).values, [1, 0, 0])
        // Combined with a built-in as the GRPO stage does: Σ weight · value.
        let task = try read(entry("task", [("checker", "arithmetic")]), among: kinds)
        let combined = WeightedRewards([(try task.build(RewardContext()), task.weight), (reward, spec.weight)])
        let (perFunction, _) = try combined.score([input("#### 4", row: ["answer": "4"]), input("4", row: ["answer": "5"])])
        XCTAssertEqual(perFunction, [[1, 1], [0, 0]])
        XCTAssertEqual(combined.weights, [1, 0.2])

        // Its settings are checked as the README says.
        let readme = try String(contentsOf: Self.readme, encoding: .utf8).replacingOccurrences(of: "\n", with: " ")
        let typo = message { try RewardRegistry.read(self.entry("keyword", [("wrd", "x")]), path: "stages.0.grpo.rewards.1", self.reader, among: kinds) }
        let stated = "stages.0.grpo.rewards.1.keyword.wrd: unknown key (did you mean 'word'?); valid keys: name, word, weight"
        XCTAssertEqual(typo, "r.yaml:7: " + stated)
        XCTAssertTrue(readme.contains(stated), "README quotes the message")
        XCTAssertEqual(message { try self.read(self.entry("keyword", [("word", "")]), among: kinds) },
                       "r.yaml:7: rewards.0.keyword.word: must not be empty")
        XCTAssertTrue(message { try self.read(self.entry("keyword"), among: kinds) }.contains("rewards.0.keyword.word: missing required key"))
    }
}
