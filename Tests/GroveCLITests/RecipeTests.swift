import Foundation
import GroveConfig
import GroveTestSupport
import XCTest
@testable import grove
import GroveRun

/// Every recipe in Recipes/ parses; malformed recipes fail with the file, line and key path.
final class RecipeTests: XCTestCase {
    static let root = Fixtures.repoRoot

    override func setUp() {
        FileManager.default.changeCurrentDirectoryPath(Self.root.path)  // recipes name paths from the repository root
    }

    /// Recipes whose model is downloaded separately (README): a tiny fixture model stands in for it.
    static let downloadedModel = ["smollm2-arithmetic.yaml": ["model.path=Tests/Fixtures/shared/model_a_qwen2/model"],
                                  "smollm2-arithmetic-sft.yaml": ["model.path=Tests/Fixtures/shared/model_a_qwen2/model"]]

    func testEveryRecipeInRecipesParses() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: "Recipes").filter { $0.hasSuffix(".yaml") }
        XCTAssertFalse(files.isEmpty)
        for f in files { XCTAssertNoThrow(try Recipe.load(path: "Recipes/\(f)", overrides: Self.downloadedModel[f] ?? []), f) }
    }

    /// The SmolLM2 recipe validates as `grove validate` does: chat prompts, answers for last_number, LoRA.
    func testSmolLM2RecipeValidates() throws {
        let r = try Recipe.load(path: "Recipes/smollm2-arithmetic.yaml", overrides: Self.downloadedModel["smollm2-arithmetic.yaml"]!)
        try r.checkRows(tokenizer: try r.rowTokenizer())
        XCTAssertEqual(r.data.task, .lastNumber)
        XCTAssertEqual(r.lora?.r, 8)
        XCTAssertEqual(r.eval.samples, 100)
        guard let grpo = (r.stages.first as? GRPOStage)?.config else { return XCTFail("one grpo stage expected") }
        XCTAssertEqual(grpo.sampling.maxNewTokens, 48)
        // Its SFT control: the same prompts with demonstrations, the same adapter and held-out set.
        let control = try Recipe.load(path: "Recipes/smollm2-arithmetic-sft.yaml", overrides: Self.downloadedModel["smollm2-arithmetic-sft.yaml"]!)
        try control.checkRows(tokenizer: try control.rowTokenizer())
        XCTAssertEqual(control.lora?.r, r.lora?.r)
        XCTAssertEqual(control.data.eval, r.data.eval)
        XCTAssertTrue(control.stages.first is SFTStage)
    }

    func testQuickstartValues() throws {
        let r = try Recipe.load(path: "Recipes/quickstart.yaml")
        guard let sft = (r.stages[0] as? SFTStage)?.config, case .scratch(let config, _) = r.model else { return XCTFail("unexpected recipe shape") }
        XCTAssertEqual(config.modelType, .qwen2)
        XCTAssertGreaterThan(sft.steps, 0)
        XCTAssertEqual(r.data.task, .arithmetic)
    }

    func testOverrides() throws {
        let r = try Recipe.load(path: "Recipes/quickstart.yaml", overrides: ["stages.0.sft.lr=3e-4", "seed=7", "stages.0.sft.steps=5"])
        guard let sft = (r.stages[0] as? SFTStage)?.config else { return XCTFail() }
        XCTAssertEqual(sft.learningRate, 3e-4)
        XCTAssertEqual(sft.steps, 5)
        XCTAssertEqual(r.seed, 7)
        XCTAssertEqual(r.eval.passK, 0, "pass@k is off unless asked for")
        XCTAssertEqual(try Recipe.load(path: "Recipes/quickstart.yaml", overrides: ["eval.pass_k=8"]).eval.passK, 8)
        XCTAssertThrowsError(try Recipe.load(path: "Recipes/quickstart.yaml", overrides: ["eval.pass_k=-1"])) {
            XCTAssertTrue("\($0)".contains("eval.pass_k: must be at least 0"), "\($0)")
        }
        XCTAssertThrowsError(try Recipe.load(path: "Recipes/quickstart.yaml", overrides: ["stages.3.sft.lr=1"])) {
            XCTAssertTrue("\($0)".contains("stages.3.sft.lr"), "\($0)")
        }
        // A micro-batch size need not divide the batch: the split goes by length.
        guard let uneven = (try Recipe.load(path: "Recipes/quickstart.yaml", overrides: ["stages.0.sft.micro_batch_size=24"]).stages[0] as? SFTStage)?.config
        else { return XCTFail() }
        XCTAssertEqual(uneven.microBatchSize, 24)
        XCTAssertEqual(uneven.batchSize, 64)
    }

    /// The messages of malformed recipes, each naming file, line and key.
    func testMalformedRecipesGiveLocatedErrors() throws {
        let quickstart = try String(contentsOfFile: "Recipes/quickstart.yaml", encoding: .utf8)
        func error(_ replace: String, _ with: String) -> String {
            precondition(quickstart.contains(replace), replace)
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).yaml").path
            try? quickstart.replacingOccurrences(of: replace, with: with).write(toFile: path, atomically: true, encoding: .utf8)
            do { _ = try Recipe.load(path: path); return "no error" } catch {
                return "\(error)".replacingOccurrences(of: path, with: "bad.yaml")
            }
        }
        func line(_ needle: String) -> Int { quickstart.components(separatedBy: "\n").firstIndex { $0.contains(needle) }! + 1 }

        XCTAssertEqual(error("      lr: 3.0e-3", "      lrate: 3.0e-3"),
                       "bad.yaml:\(line("lr: 3.0e-3")): stages.0.sft.lrate: unknown key (did you mean 'lr'?); valid keys: steps, batch_size, micro_batch_size, lr, schedule, warmup_steps, min_lr_ratio, step_size, gamma, weight_decay, beta1, beta2, max_grad_norm, optimizer_state, max_length, eval_every, checkpoint_every, gradient_checkpointing, moe_balance_alpha, moe_bias_gamma")
        XCTAssertEqual(error("      batch_size: 64", "      batch_size: many"),
                       "bad.yaml:\(line("batch_size: 64")): stages.0.sft.batch_size: expected a whole number, found 'many'")
        XCTAssertEqual(error("      batch_size: 64", "      batch_size: 0"),
                       "bad.yaml:\(line("batch_size: 64")): stages.0.sft.batch_size: must be at least 1, found 0")
        XCTAssertTrue(error("  train: Datasets/arithmetic/demos.jsonl", "  train: Datasets/nope.jsonl")
                        .hasPrefix("bad.yaml:\(line("train: Datasets/arithmetic/demos.jsonl")): data.train: 'Datasets/nope.jsonl' does not exist"))
        XCTAssertTrue(error("  task: arithmetic", "  task: arithmatic").contains("data.task: unknown value 'arithmatic' (did you mean 'arithmetic'?)"))
        XCTAssertTrue(error("  - sft:", "  - stf:").contains("stages.0.stf: unknown stage kind (did you mean 'sft'?)"))
        XCTAssertTrue(error("    num_attention_heads: 4", "    num_attention_heads: 3").contains("model.init"))
        XCTAssertTrue(error("seed: 0", "seed: [0").hasPrefix("bad.yaml:"), "YAML syntax errors are located")
        XCTAssertTrue(error("output_dir: runs/quickstart", "outputdir: runs/quickstart").contains("(did you mean 'output_dir'?)"))
        XCTAssertEqual(error("      schedule: warmup_cosine\n", ""),
                       "bad.yaml:\(line("warmup_steps: 50") - 1): stages.0.sft.warmup_steps: not used by schedule 'constant'; set schedule: linear, warmup_cosine or warmup_step",
                       "a schedule key the schedule does not read is not silently ignored")
        XCTAssertEqual(error("      min_lr_ratio: 0.05", "      gamma: 0.5"),
                       "bad.yaml:\(line("min_lr_ratio: 0.05")): stages.0.sft.gamma: not used by schedule 'warmup_cosine'")
    }

    func testSFTControlNeedsAnEarlierSFTStage() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("control-\(UUID().uuidString).yaml").path
        try """
        model: {path: Recipes}
        data: {train: Datasets/arithmetic/eval.jsonl, task: arithmetic}
        stages:
          - grpo: {steps: 2, sft_control: true, rewards: [{task: {weight: 1}}]}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Recipe.load(path: path)) {
            XCTAssertEqual("\($0)".replacingOccurrences(of: path, with: "r.yaml"),
                           "r.yaml:4: stages.0.grpo.sft_control: needs an sft stage before this grpo stage (its settings are what the control repeats)")
        }
    }

    func assertRejected(_ text: String, file: String, naming words: [String], line: UInt = #line) {
        XCTAssertThrowsError(try RecipeValue.parse(text, file: file), line: line) { error in
            XCTAssertTrue(words.allSatisfy("\(error)".contains), "\(error)", line: line)
        }
    }

    /// Yams recurses once per nesting level: thousands of levels overflow the stack before it can report anything.
    func testDeepNestingIsAnError() {
        assertRejected("name: x\na: " + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000) + "\n",
                       file: "flow.yaml", naming: ["flow.yaml:2: ", "nested deeper than 64"])
        let block = (0..<100).map { String(repeating: " ", count: $0) + "k:\n" }.joined() + String(repeating: " ", count: 100) + "k: v\n"
        assertRejected(block, file: "block.yaml", naming: ["block.yaml:65: ", "nested deeper than 64"])
        assertRejected(block.replacingOccurrences(of: "\n", with: "\r\n"), file: "crlf.yaml", naming: ["crlf.yaml:65: ", "nested deeper than 64"])
        assertRejected(String(repeating: "? ", count: 5000) + "x\n", file: "keys.yaml", naming: ["keys.yaml:1: ", "nested deeper than 64"])
        assertRejected("a:\n" + String(repeating: "- ", count: 100) + "x\n", file: "list.yaml", naming: ["list.yaml:2: ", "nested deeper than 64"])
        // Brackets in quotes and comments are text.
        XCTAssertNoThrow(try RecipeValue.parse("a: '" + String(repeating: "[", count: 100) + "' # {{{{\nb: [[[[1]]]]\n", file: "ok.yaml"))
    }

    /// Billion laughs: each alias repeats the anchored tree, 10^9 values from ten lines.
    func testAliasBombIsAnError() {
        var bomb = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1...9 { bomb += "l\(i): &l\(i) [" + Array(repeating: "*l\(i - 1)", count: 10).joined(separator: ", ") + "]\n" }
        assertRejected(bomb, file: "bomb.yaml", naming: ["bomb.yaml:", "more than 100000 values"])
        // A chain of aliases nests without brackets or indentation.
        var chain = "c0: &c0 [x]\n"
        for i in 1...5000 { chain += "c\(i): &c\(i) [*c\(i - 1)]\n" }
        assertRejected(chain, file: "chain.yaml", naming: ["chain.yaml:", "nested deeper than 64"])
    }
}
