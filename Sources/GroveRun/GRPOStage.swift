import Foundation
import GroveConfig
import GroveData
import GroveModel
import GroveRollout
import GroveTensor
import GroveTrain
import Rewards

/// `- grpo: {steps: 200, group_size: 8, rewards: [...], …}`: Group Relative Policy Optimization
/// on the training rows' prompts (or the stage's own `prompts` file), optionally followed by
/// its SFT control.
public struct GRPOStage: RecipeStage {
    public static let recipeKey = "grpo"
    public var config: GRPOConfig
    public var rewards: [RewardSpec]
    /// The stage's prompt file (same format as data.train), or nil for data.train.
    public var prompts: URL?
    /// Also train the stage's starting model by further SFT (the nearest earlier sft stage's
    /// settings) for the wall time the GRPO steps took, and report both (`SFTControl`).
    public var sftControl: Bool

    public var steps: Int { config.steps }
    public var maxSequenceLength: Int { 512 + config.sampling.maxNewTokens }

    enum LossKind: String, CaseIterable { case grpo, bnpo, dapo, dr_grpo }
    enum ScalingKind: String, CaseIterable { case group, batch, none }

    public static func read(_ value: RecipeValue, path: String, _ r: RecipeReader) throws -> GRPOStage {
        let s = try r.mapping(value, path, allowed: ["steps", "prompts_per_step", "group_size", "temperature", "top_k", "top_p", "min_p",
                                                     "max_new_tokens", "stop", "beta", "epsilon", "epsilon_high", "loss", "scale_rewards",
                                                     "iterations", "lr"] + ScheduleKeys.all + ["weight_decay", "beta1", "beta2",
                                                     "max_grad_norm", "optimizer_state", "mask_truncated", "dynamic_sampling", "ref_refresh_every",
                                                     "micro_batch_tokens", "eval_every", "checkpoint_every", "gradient_checkpointing", "rewards", "prompts", "sft_control"]
                                                     + ExpertBalancingKeys.all)
        let steps = try r.int(try s.required("steps"), s.path("steps"), min: 1)
        let maxNew = try s.int("max_new_tokens", default: 64, min: 1)
        var sampling = SamplingOptions(temperature: Float(try s.double("temperature", default: 1, range: 0...10)), maxNewTokens: maxNew)
        sampling.topK = try s["top_k"].map { try r.int($0, s.path("top_k"), min: 1) }
        sampling.topP = try s["top_p"].map { Float(try r.double($0, s.path("top_p"), range: 0...1)) }
        sampling.minP = try s["min_p"].map { Float(try r.double($0, s.path("min_p"), range: 0...1)) }
        let aggregation: LossAggregation
        switch try s["loss"].map({ try r.choice($0, s.path("loss"), as: LossKind.self) }) ?? .grpo {
        case .grpo: aggregation = .perSequence
        case .bnpo, .dapo: aggregation = .perToken
        case .dr_grpo: aggregation = .constantLength(maxNew)
        }
        let epsilon = try s.double("epsilon", default: 0.2, range: 0...1)
        let loss = GRPOLossConfig(beta: try s.double("beta", default: 0.04, range: 0...100), epsilonLow: epsilon,
                                  epsilonHigh: try s["epsilon_high"].map { try r.double($0, s.path("epsilon_high"), range: 0...10) },
                                  aggregation: aggregation)
        var config = GRPOConfig(steps: steps, promptsPerStep: try s.int("prompts_per_step", default: 8, min: 1),
                                groupSize: try s.int("group_size", default: 8, min: 2), sampling: sampling, loss: loss,
                                learningRate: Float(try s.double("lr", default: 1e-5, range: 0...10)))
        config.stopStrings = try s["stop"].map { try r.sequence($0, s.path("stop")).enumerated().map { try r.string($1, s.path("stop.\($0)")) } } ?? []
        switch try s["scale_rewards"].map({ try r.choice($0, s.path("scale_rewards"), as: ScalingKind.self) }) ?? .group {
        case .group: config.scaling = .group
        case .batch: config.scaling = .batch
        case .none: config.scaling = .none
        }
        config.iterations = try s.int("iterations", default: 1, min: 1)
        config.schedule = try ScheduleKeys.read(s, steps: steps)
        config.weightDecay = Float(try s.double("weight_decay", default: 0, range: 0...10))
        config.betas = (Float(try s.double("beta1", default: Double(config.betas.0), range: 0...1)),
                        Float(try s.double("beta2", default: Double(config.betas.1), range: 0...1)))
        config.maxGradNorm = Float(try s.double("max_grad_norm", default: 1, range: 0...1e6))
        config.optimizerState = try s["optimizer_state"].map { try r.choice($0, s.path("optimizer_state"), as: AdamW.MomentStorage.self) } ?? .float32
        config.maskTruncated = try s.bool("mask_truncated", default: false)
        config.dynamicSamplingRounds = try s.int("dynamic_sampling", default: 0, min: 0)
        config.refreshReferenceEvery = try s.int("ref_refresh_every", default: 0, min: 0)
        config.microBatchTokens = try s.int("micro_batch_tokens", default: config.microBatchTokens, min: 1)
        config.evalEvery = try s.int("eval_every", default: 0, min: 0)
        config.checkpointEvery = try s.int("checkpoint_every", default: 0, min: 0)
        config.gradientCheckpointing = try s.bool("gradient_checkpointing", default: false)
        config.expertBalancing = try ExpertBalancingKeys.read(s, gradientCheckpointing: config.gradientCheckpointing)
        let rewardList = try r.sequence(try s.required("rewards"), s.path("rewards"))
        if rewardList.isEmpty { throw r.error(try s.required("rewards"), s.path("rewards"), "needs at least one reward") }
        return GRPOStage(config: config,
                         rewards: try rewardList.enumerated().map { try RewardRegistry.read($1, path: s.path("rewards.\($0)"), r) },
                         prompts: try s["prompts"].map { try r.existingPath($0, s.path("prompts"), directory: false) },
                         sftControl: try s.bool("sft_control", default: false))
    }

    public func check(index: Int, in stages: [any RecipeStage], value: RecipeValue, _ r: RecipeReader) throws {
        if sftControl, SFTControl.source(before: index, in: stages) == nil {
            throw r.error(value, "stages.\(index).grpo.sft_control", "needs an sft stage before this grpo stage (its settings are what the control repeats)")
        }
    }

    /// Its prompts; with `data.task` set they must hold what the checker reads (the `task`
    /// reward's default, and a reward of 0 for every completion without it).
    public func dataNeeds(_ recipe: Recipe) -> [DataNeed] { [DataNeed(file: prompts, completion: false, checkerFields: true)] }

    public func run(_ context: StageContext) throws {
        let controlStart = sftControl ? try SFTControl.startModel(context) : nil
        let promptFile = try prompts.map { try JSONLFile(url: $0) }
        let stream = context.stream(file: promptFile, maxLength: 1 << 20)
        let rewardContext = RewardContext(task: context.recipe.data.task, warn: context.log.warn)
        let built = try rewards.map { (reward: try $0.build(rewardContext), weight: $0.weight) }
        try context.run.store.recordRewards(run: context.run.runID, stage: context.label,
                                            rewards: zip(rewards, built).map { (name: $1.reward.name, kind: $0.key, weight: $0.weight) })
        let trainer = GRPOTrainer(policy: context.model, tokenizer: context.tokenizer, prompts: stream, rewards: WeightedRewards(built),
                                  config: config, seed: context.seed, communicator: context.communicator)
        if let r = context.resume {
            let reference = r.state.hasReference ? try Transformer.load(from: r.directory.appendingPathComponent("reference")) : nil
            try trainer.restore(step: r.state.step, stepSeconds: r.state.stepSeconds ?? 0, optimizerState: r.optimizer,
                                dataPosition: r.state.dataPosition, reference: reference)
        }
        context.attach(trainer.loop, position: { stream.position }, reference: { trainer.reference })
        try trainer.train(onEvent: context.log.handle)
        context.finish(steps: trainer.step, stepSeconds: trainer.loop.stepSeconds)
        if let controlStart {
            // The control is compared with GRPO's end: that evaluation comes first.
            try context.log.evaluateAtEndIfNeeded(context.data.evaluator, model: context.model, step: trainer.step)
            let control = try SFTControl(grpoStage: context.index, grpoSeconds: trainer.loop.stepSeconds, context: context)
            try context.runSubstage(control, label: "\(context.index):\(control.kind)", model: controlStart)
        }
    }
}
