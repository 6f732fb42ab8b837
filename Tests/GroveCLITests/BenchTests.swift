import XCTest
@testable import grove

/// `grove bench --smoke`: every part runs and reports sane figures (CI checks that it works, not its speed).
final class BenchTests: XCTestCase {
    func testSmokeRunOfEveryPart() throws {
        let bench = try Bench.parse(["--smoke", "--batch", "2"])
        let train = try bench.measure(.small, .train)[0]
        XCTAssertEqual(train["bench"] as? String, "grove_train_step")
        XCTAssertEqual(train["params"] as? Int, 3_428_608)  // bench_torch.py's "small": 3.4M with tied embeddings
        XCTAssertGreaterThan(train["tokens_per_s"] as? Double ?? 0, 0)
        let loss = train["first_loss"] as? Double ?? .nan
        XCTAssertEqual(loss, log(2048), accuracy: 0.1, "random weights predict about uniformly over 2048 tokens")

        XCTAssertGreaterThan(try bench.measure(.small, .forward)[0]["tokens_per_s"] as? Double ?? 0, 0)
        XCTAssertGreaterThan(try bench.measure(.small, .generate)[0]["new_tokens_per_s"] as? Double ?? 0, 0)

        let grpo = try bench.measure(.small, .grpo)
        XCTAssertEqual(grpo.map { $0["bench"] as? String }, ["grove_grpo_sft", "grove_grpo_step"])
        let step = grpo[1]
        XCTAssertGreaterThan(step["median_step_s"] as? Double ?? 0, 0)
        let length = step["completion_mean_length"] as? Double ?? 0
        XCTAssertTrue((1...16).contains(length), "completions are 1…16 tokens, got \(length)")
    }
}
