import Foundation
import GroveData
import GroveModel
import GroveTensor
import GroveTokenizer

/// Settings of an `sft` stage.
public struct SFTConfig: Equatable {
    public var steps: Int
    /// Sequences per optimizer step.
    public var batchSize: Int
    /// The most padded tokens per forward/backward, counted in sequences of the batch's longest
    /// length (gradient accumulation when smaller than batchSize). Within it, the batch is sorted
    /// by length and split where that saves padding, so each micro-batch pads only to its own
    /// longest sequence.
    public var microBatchSize: Int
    public var learningRate: Float
    public var schedule: LearningRateSchedule
    public var weightDecay: Float
    public var betas: (Float, Float)
    public var maxGradNorm: Float
    /// AdamW's moments in float32 or bfloat16 (half their memory).
    public var optimizerState: AdamW.MomentStorage = .float32
    public var maxLength: Int
    public var evalEvery: Int
    public var checkpointEvery: Int
    /// Activation checkpointing during training (`Transformer.gradientCheckpointing`): less memory, one more forward.
    public var gradientCheckpointing = false
    /// DeepSeekMoE's balance loss α and bias update γ while training (`Transformer.expertBalancing`).
    public var expertBalancing = ExpertBalancing()

    public init(steps: Int, batchSize: Int = 32, microBatchSize: Int = 32, learningRate: Float = 1e-3,
                schedule: LearningRateSchedule = .constant, weightDecay: Float = 0.1, betas: (Float, Float) = (0.9, 0.95),
                maxGradNorm: Float = 1, maxLength: Int = 256, evalEvery: Int = 0, checkpointEvery: Int = 0) {
        self.steps = steps; self.batchSize = batchSize; self.microBatchSize = microBatchSize
        self.learningRate = learningRate; self.schedule = schedule; self.weightDecay = weightDecay
        self.betas = betas; self.maxGradNorm = maxGradNorm; self.maxLength = maxLength
        self.evalEvery = evalEvery; self.checkpointEvery = checkpointEvery
    }

    public static func == (a: SFTConfig, b: SFTConfig) -> Bool {
        a.steps == b.steps && a.batchSize == b.batchSize && a.microBatchSize == b.microBatchSize
            && a.learningRate == b.learningRate && a.schedule == b.schedule && a.weightDecay == b.weightDecay
            && a.betas == b.betas && a.maxGradNorm == b.maxGradNorm && a.optimizerState == b.optimizerState && a.maxLength == b.maxLength
            && a.evalEvery == b.evalEvery && a.checkpointEvery == b.checkpointEvery && a.gradientCheckpointing == b.gradientCheckpointing
            && a.expertBalancing == b.expertBalancing
    }
}

/// Supervised fine-tuning on completions: next-token cross-entropy over completion tokens
/// only, averaged over every completion token of the optimizer batch (so the result does not
/// depend on how the batch is split into micro-batches), AdamW, clipping and a schedule.
///
/// The trainer never prints and never touches the run database: it reports through `onEvent`.
///
/// ```swift
/// let trainer = SFTTrainer(model: model, data: data, config: SFTConfig(steps: 600))
/// try trainer.train { event in print(event) }
/// ```
public final class SFTTrainer {
    public let model: Transformer
    public let data: TrainingStream
    public let config: SFTConfig
    /// Step count, optimizer, evaluation and checkpoint hooks.
    public let loop: TrainingLoop
    public var step: Int { loop.step }
    public var optimizer: AdamW { loop.optimizer }

    /// With a `communicator` of several ranks, each trains on its share of every batch (`SFTObjective`).
    public init(model: Transformer, data: TrainingStream, config: SFTConfig, communicator: Communicator = SingleProcess()) {
        self.model = model
        self.data = data
        self.config = config
        loop = TrainingLoop(objective: SFTObjective(model: model, data: data, config: config, communicator: communicator),
                            settings: config.loopSettings, communicator: communicator)
    }

    /// Restores the step count, step time, optimizer moments and data position of a checkpoint.
    public func restore(step: Int, stepSeconds: Double = 0, optimizerState: [String: Tensor], dataPosition: TrainingStream.Position) throws {
        try loop.restore(step: step, stepSeconds: stepSeconds, optimizerState: optimizerState)
        try data.resume(at: dataPosition)
    }

    /// Runs from the current step to `config.steps`.
    public func train(onEvent: (TrainingEvent) throws -> Void) throws {
        let previous = model.gradientCheckpointing, balancing = model.expertBalancing
        model.gradientCheckpointing = config.gradientCheckpointing
        model.expertBalancing = config.expertBalancing
        defer { model.expertBalancing = balancing }
        defer { model.gradientCheckpointing = previous }
        try loop.run(onEvent: onEvent)
    }
}

extension SFTConfig {
    var loopSettings: LoopSettings {
        LoopSettings(steps: steps, learningRate: learningRate, schedule: schedule, weightDecay: weightDecay, betas: betas,
                     maxGradNorm: maxGradNorm, optimizerState: optimizerState, evalEvery: evalEvery, checkpointEvery: checkpointEvery)
    }
}

/// SFT's step: the next batch, split into length-sorted micro-batches whose gradients add up to
/// the whole batch's mean NLL. In a data-parallel run every rank reads the whole batch (so the
/// normaliser, the whole batch's target count, needs no message) and trains on its share,
/// balanced by tokens (`Communicator.balancedShare`); the loop sums the ranks' gradients.
final class SFTObjective: TrainingObjective {
    let model: Transformer
    let data: TrainingStream
    let config: SFTConfig
    let communicator: Communicator
    var stream: TrainingStream { data }
    private var examples: [TokenizedExample] = []

    init(model: Transformer, data: TrainingStream, config: SFTConfig, communicator: Communicator) {
        self.model = model; self.data = data; self.config = config; self.communicator = communicator
    }

    func prepareBatch(step: Int) throws -> Int {
        examples = try data.next(config.batchSize)
        return 1
    }

    func accumulateGradients(update: Int) throws -> Double {
        let targetTotal = examples.reduce(0) { $0 + max($1.tokens.count - max($1.promptLength, 1), 0) }
        var lossSum: Double = 0
        let mine = communicator.balancedShare(examples.map(\.tokens.count)).map { examples[$0] }
        for part in SFTTrainer.microBatches(mine, size: config.microBatchSize) {
            let micro = SFTBatch(part, padToken: data.padToken)
            let logits = model.forward(tokens: micro.tokens, batch: micro.batch)
            // Σ over this micro-batch's targets of −log p, divided by the whole batch's count.
            let nll = scale(sum(tokenLogProbs(logits, targets: micro.targets)), -1 / Float(max(targetTotal, 1)))
            lossSum += Double(nll.item)
            // The MoE balance loss of this micro-batch, weighted by its share of the batch's targets.
            let share = Float(micro.targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) }) / Float(max(targetTotal, 1))
            (model.takeBalanceLoss().map { add(nll, scale($0, share)) } ?? nll).backward()
        }
        return lossSum
    }

    func finishStep(_ outcome: StepOutcome) -> StepReport {
        let tokens = Double(examples.reduce(0) { $0 + $1.tokens.count })  // real tokens, padding not counted
        let metrics = SFTStepMetrics(loss: outcome.loss, learningRate: Double(outcome.learningRate), gradNorm: Double(outcome.gradNorm),
                                     tokens: tokens, seconds: outcome.seconds, epoch: data.epochProgress, expertLoads: outcome.expertLoads)
        return StepReport(step: outcome.step, of: config.steps, metrics: metrics, tokens: tokens, seconds: outcome.seconds,
                          rollouts: [], warnings: [])
    }
}

extension SFTTrainer {
    /// The batch as micro-batches: sorted by length and split wherever that saves more padding
    /// than another pass costs (priced at one row of the batch's longest length), each part at
    /// most `size` rows of that length in padded tokens. So short completions are not padded to
    /// the longest one of the batch. The loss is normalised over the whole batch, so the split
    /// does not change the update.
    static func microBatches(_ examples: [TokenizedExample], size: Int) -> [[TokenizedExample]] {
        let lengths = examples.map(\.tokens.count), longest = lengths.max() ?? 0
        return lengthSortedMicroBatches(lengths: lengths, tokenBudget: size * longest, partOverhead: longest)
            .map { $0.map { examples[$0] } }
    }
}
