import Foundation
import XCTest
@testable import grove
import GroveRun
import GroveTensor

/// Recipe keys as people get them wrong or right: TRL's names get Grove's, `--set` errors name the
/// override, schedules read only their own keys, and optimizer betas reach the stage's config.
final class RecipeKeyTests: XCTestCase {
    override func setUp() {
        _ = FileManager.default.changeCurrentDirectoryPath(RecipeTests.root.path)
    }

    /// A recipe of one sft and one grpo stage with `sft` and `grpo` as their extra settings; written, then loaded.
    func load(sft: String = "", grpo: String = "", overrides: [String] = []) throws -> Recipe {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID().uuidString).yaml").path
        try """
        model: {path: Recipes}
        data: {train: Datasets/arithmetic/eval.jsonl, task: arithmetic}
        stages:
          - sft: {steps: 10, \(sft)}
          - grpo: {steps: 20, \(grpo)rewards: [task]}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return try Recipe.load(path: path, overrides: overrides)
    }

    /// The error of loading, with the temporary file's path as `r.yaml`.
    func error(sft: String = "", grpo: String = "", overrides: [String] = []) -> String {
        do { _ = try load(sft: sft, grpo: grpo, overrides: overrides); return "no error" } catch {
            return "\(error)".replacingOccurrences(of: #"/\S*keys-[0-9A-F-]+\.yaml"#, with: "r.yaml", options: .regularExpression)
        }
    }

    func testTRLNamesGetGrovesName() {
        XCTAssertTrue(error(sft: "learning_rate: 1e-3").hasPrefix(
            "r.yaml:4: stages.0.sft.learning_rate: unknown key (did you mean 'lr'? TRL's 'learning_rate' is Grove's 'lr'); valid keys: steps,"),
            error(sft: "learning_rate: 1e-3"))
        XCTAssertTrue(error(grpo: "num_generations: 8, ").contains(
            "r.yaml:5: stages.1.grpo.num_generations: unknown key (did you mean 'group_size'? TRL's 'num_generations' is Grove's 'group_size')"))
        XCTAssertTrue(error(grpo: "per_device_train_batch_size: 8, ").contains(
            "stages.1.grpo.per_device_train_batch_size: unknown key (did you mean 'prompts_per_step'? TRL's 'per_device_train_batch_size' is Grove's 'prompts_per_step')"))
        XCTAssertTrue(error(sft: "per_device_train_batch_size: 8").contains(
            "(did you mean 'batch_size'? TRL's 'per_device_train_batch_size' is Grove's 'batch_size')"), "in sft, a batch is sequences")
        XCTAssertTrue(error(grpo: "max_completion_length: 8, ").contains("TRL's 'max_completion_length' is Grove's 'max_new_tokens'"))
    }

    func testSetErrorsNameTheOverride() {
        let message = error(overrides: ["stages.0.sft.lr=fast"])
        XCTAssertEqual(message, "r.yaml: --set stages.0.sft.lr: expected a number, found 'fast'")
        XCTAssertFalse(message.contains(":0:"), "an override has no line in the file")
        XCTAssertEqual(error(overrides: ["stages.1.grpo.learning_rate=1"]),
                       "r.yaml: --set stages.1.grpo.learning_rate: unknown key (did you mean 'lr'? TRL's 'learning_rate' is Grove's 'lr'); valid keys: "
                       + "steps, prompts_per_step, group_size, temperature, top_k, top_p, min_p, max_new_tokens, stop, beta, epsilon, epsilon_high, "
                       + "loss, scale_rewards, iterations, lr, schedule, warmup_steps, min_lr_ratio, step_size, gamma, weight_decay, beta1, beta2, "
                       + "max_grad_norm, optimizer_state, mask_truncated, dynamic_sampling, ref_refresh_every, micro_batch_tokens, eval_every, checkpoint_every, "
                       + "gradient_checkpointing, rewards, prompts, sft_control, moe_balance_alpha, moe_bias_gamma")
    }

    func testLinearScheduleReadsWarmupAndRejectsGamma() throws {
        let r = try load(sft: "schedule: linear, warmup_steps: 3", grpo: "schedule: linear, ")
        XCTAssertEqual((r.stages[0] as? SFTStage)?.config.schedule, .warmupLinear(warmupSteps: 3, totalSteps: 10))
        XCTAssertEqual((r.stages[1] as? GRPOStage)?.config.schedule, .warmupLinear(warmupSteps: 0, totalSteps: 20))
        XCTAssertEqual(error(sft: "schedule: linear, gamma: 0.5"), "r.yaml:4: stages.0.sft.gamma: not used by schedule 'linear'")
        XCTAssertEqual(error(grpo: "schedule: linear, min_lr_ratio: 0.1, "), "r.yaml:5: stages.1.grpo.min_lr_ratio: not used by schedule 'linear'")
    }

    func testGradientCheckpointingReachesTheConfigs() throws {
        let r = try load(sft: "gradient_checkpointing: true", grpo: "gradient_checkpointing: true, ")
        XCTAssertEqual((r.stages[0] as? SFTStage)?.config.gradientCheckpointing, true)
        XCTAssertEqual((r.stages[1] as? GRPOStage)?.config.gradientCheckpointing, true)
        XCTAssertEqual((try load().stages[0] as? SFTStage)?.config.gradientCheckpointing, false)
    }

    /// `optimizer_state` reaches both stages' configs (float32 unless set); a dtype AdamW cannot
    /// hold its moments in is refused with the key and the choices named.
    func testOptimizerStateReachesTheConfigs() throws {
        let r = try load(sft: "optimizer_state: bfloat16", grpo: "optimizer_state: bfloat16, ")
        XCTAssertEqual((r.stages[0] as? SFTStage)?.config.optimizerState, .bfloat16)
        XCTAssertEqual((r.stages[1] as? GRPOStage)?.config.optimizerState, .bfloat16)
        let defaults = try load()
        XCTAssertEqual((defaults.stages[0] as? SFTStage)?.config.optimizerState, .float32)
        XCTAssertEqual((defaults.stages[1] as? GRPOStage)?.config.optimizerState, .float32)
        XCTAssertEqual(error(sft: "optimizer_state: float16"),
                       "r.yaml:4: stages.0.sft.optimizer_state: unknown value 'float16' (did you mean 'bfloat16'?); one of: float32, bfloat16")
        XCTAssertEqual(error(overrides: ["stages.1.grpo.optimizer_state=bf16"]),
                       "r.yaml: --set stages.1.grpo.optimizer_state: unknown value 'bf16'; one of: float32, bfloat16")
    }

    func testGRPOBetasReachTheConfig() throws {
        let stage = try XCTUnwrap(try load(grpo: "beta1: 0.8, beta2: 0.95, ").stages[1] as? GRPOStage)
        XCTAssertEqual(stage.config.betas.0, 0.8)
        XCTAssertEqual(stage.config.betas.1, 0.95)
        let defaults = try XCTUnwrap(try load().stages[1] as? GRPOStage)
        XCTAssertEqual(defaults.config.betas.0, 0.9)
        XCTAssertEqual(defaults.config.betas.1, 0.99)
        XCTAssertEqual(error(grpo: "beta2: 2, "), "r.yaml:5: stages.1.grpo.beta2: must be within 0.0…1.0, found 2")
    }
}
