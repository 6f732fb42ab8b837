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

    /// `--optimizer-state bfloat16` reaches the train part and its JSON line; other names are refused.
    func testOptimizerStateFlag() throws {
        let train = try Bench.parse(["--smoke", "--batch", "2", "--optimizer-state", "bfloat16"]).measure(.small, .train)[0]
        XCTAssertEqual(train["optimizer_state"] as? String, "bfloat16")
        XCTAssertEqual(try Bench.parse([]).optimizerState, .float32)
        XCTAssertThrowsError(try Bench.parse(["--optimizer-state", "float16"])) {
            XCTAssertTrue(Bench.message(for: $0).contains("--optimizer-state: 'float16' is not one of float32, bfloat16"), Bench.message(for: $0))
        }
    }

    /// The MLA shape against a GQA model of its parameter count: the latent cache holds (r + dr)·L floats per
    /// token, the expanded one NH·(dn + dr + dv)·L, GQA 2·KVH·HS·L; both MLA caches decode at some speed.
    func testLatentCacheAgainstGQA() throws {
        let mla = BenchShape.mla.config(), gqa = BenchShape.gqa.config()
        XCTAssertEqual(Double(gqa.parameterCount()), Double(mla.parameterCount()), accuracy: Double(mla.parameterCount()) * 0.001)
        let bench = try Bench.parse(["--smoke"])
        let latent = try bench.measure(.mla, .generate)
        XCTAssertEqual(latent.map { $0["cache"] as? String }, ["latent", "keys_and_values"])
        XCTAssertEqual(latent.map { $0["cache_bytes_per_token"] as? Int }, [4 * 8 * (128 + 32), 4 * 8 * 8 * (96 + 64)])
        XCTAssertTrue(latent.allSatisfy { ($0["new_tokens_per_s"] as? Double ?? 0) > 0 })
        XCTAssertEqual(try bench.measure(.gqa, .generate)[0]["cache_bytes_per_token"] as? Int, 4 * 8 * 2 * 2 * 64)
    }
}
