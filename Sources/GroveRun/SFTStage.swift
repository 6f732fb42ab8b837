import GroveConfig
import GroveTensor
import GroveTrain

/// `- sft: {steps: 600, batch_size: 32, lr: 3e-3, …}`: supervised fine-tuning on the training rows.
public struct SFTStage: RecipeStage {
    public static let recipeKey = "sft"
    public var config: SFTConfig

    public init(config: SFTConfig) { self.config = config }

    public var steps: Int { config.steps }
    public var maxSequenceLength: Int { config.maxLength }

    public static func read(_ value: RecipeValue, path: String, _ r: RecipeReader) throws -> SFTStage {
        let s = try r.mapping(value, path, allowed: ["steps", "batch_size", "micro_batch_size", "lr"] + ScheduleKeys.all
                                                    + ["weight_decay", "beta1", "beta2", "max_grad_norm", "optimizer_state", "max_length", "eval_every", "checkpoint_every", "gradient_checkpointing"]
                                                    + ExpertBalancingKeys.all)
        let steps = try r.int(try s.required("steps"), s.path("steps"), min: 1)
        let batch = try s.int("batch_size", default: 32, min: 1)
        // Any size: the batch is split by length (SFTTrainer.microBatches), not cut in equal parts.
        let micro = try s.int("micro_batch_size", default: batch, min: 1)
        var config = SFTConfig(
            steps: steps, batchSize: batch, microBatchSize: micro,
            learningRate: Float(try s.double("lr", default: 1e-3, range: 0...10)),
            schedule: try ScheduleKeys.read(s, steps: steps),
            weightDecay: Float(try s.double("weight_decay", default: 0.1, range: 0...10)),
            betas: (Float(try s.double("beta1", default: 0.9, range: 0...1)), Float(try s.double("beta2", default: 0.95, range: 0...1))),
            maxGradNorm: Float(try s.double("max_grad_norm", default: 1, range: 0...1e6)),
            maxLength: try s.int("max_length", default: 256, min: 8),
            evalEvery: try s.int("eval_every", default: 0, min: 0),
            checkpointEvery: try s.int("checkpoint_every", default: 0, min: 0))
        config.optimizerState = try s["optimizer_state"].map { try r.choice($0, s.path("optimizer_state"), as: AdamW.MomentStorage.self) } ?? .float32
        config.gradientCheckpointing = try s.bool("gradient_checkpointing", default: false)
        config.expertBalancing = try ExpertBalancingKeys.read(s, gradientCheckpointing: config.gradientCheckpointing)
        return SFTStage(config: config)
    }

    public func dataNeeds(_ recipe: Recipe) -> [DataNeed] { [DataNeed(file: nil, completion: true, checkerFields: false)] }

    public func run(_ context: StageContext) throws {
        let stream = context.stream(maxLength: config.maxLength)
        let trainer = SFTTrainer(model: context.model, data: stream, config: config, communicator: context.communicator)
        if let r = context.resume {
            try trainer.restore(step: r.state.step, stepSeconds: r.state.stepSeconds ?? 0, optimizerState: r.optimizer,
                                dataPosition: r.state.dataPosition)
        }
        context.attach(trainer.loop, position: { stream.position })
        try trainer.train(onEvent: context.log.handle)
        context.finish(steps: trainer.step, stepSeconds: trainer.loop.stepSeconds)
    }
}
