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
    public var maxLength: Int
    public var evalEvery: Int
    public var checkpointEvery: Int

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
            && a.betas == b.betas && a.maxGradNorm == b.maxGradNorm && a.maxLength == b.maxLength
            && a.evalEvery == b.evalEvery && a.checkpointEvery == b.checkpointEvery
    }
}

/// Supervised fine-tuning on completions: next-token cross-entropy over completion tokens
/// only, averaged over every completion token of the optimizer batch (so the result does not
/// depend on how the batch is split into micro-batches), AdamW, clipping and a schedule.
///
/// The trainer never prints and never touches the run database: it reports through `onEvent`.
///
/// ```swift
/// let trainer = SFTTrainer(model: model, data: data, config: SFTConfig(steps: 600), seed: 0)
/// try trainer.train { event in print(event) }
/// ```
public final class SFTTrainer {
    public let model: Transformer
    public let data: TrainingStream
    public let config: SFTConfig
    public let optimizer: AdamW
    /// Optimizer steps taken so far.
    public private(set) var step = 0
    public var evaluate: ((Transformer, Int) throws -> [String: Double])?
    public var checkpoint: ((SFTTrainer) throws -> Void)?

    public init(model: Transformer, data: TrainingStream, config: SFTConfig) {
        self.model = model
        self.data = data
        self.config = config
        optimizer = AdamW(parameters: model.decayGroups, beta1: config.betas.0, beta2: config.betas.1,
                          weightDecay: config.weightDecay)
    }

    /// Restores the step count, optimizer moments and data position of a checkpoint.
    public func restore(step: Int, optimizerState: [String: Tensor], dataPosition: TrainingStream.Position) throws {
        self.step = step
        try optimizer.loadState(optimizerState)
        data.seek(to: dataPosition)
    }

    /// Runs from the current step to `config.steps`.
    public func train(onEvent: (TrainingEvent) -> Void) throws {
        let params = model.parameters
        while step < config.steps {
            let started = DispatchTime.now().uptimeNanoseconds
            let examples = try data.next(config.batchSize)
            let targetTotal = examples.reduce(0) { $0 + max($1.tokens.count - max($1.promptLength, 1), 0) }
            let tokenCount = examples.reduce(0) { $0 + $1.tokens.count }  // real tokens, padding not counted
            var lossSum: Double = 0
            for p in params { p.zeroGrad() }
            for part in SFTTrainer.microBatches(examples, size: config.microBatchSize) {
                let micro = SFTBatch(part, padToken: data.padToken)
                let logits = model.forward(tokens: micro.tokens, batch: micro.batch)
                // Σ over this micro-batch's targets of −log p, divided by the whole batch's count.
                let nll = scale(sum(tokenLogProbs(logits, targets: micro.targets)), -1 / Float(max(targetTotal, 1)))
                lossSum += Double(nll.item)
                nll.backward()
            }
            let gradNorm = clipGradNorm(params, maxNorm: config.maxGradNorm)
            guard lossSum.isFinite, gradNorm.isFinite else {
                throw TrainingError.nonFinite(step: step + 1, what: lossSum.isFinite ? "gradient norm" : "loss",
                                              detail: firstNonFiniteGradient(model))
            }
            let lr = config.schedule.lr(step: step, base: config.learningRate)
            optimizer.step(lr: lr)
            step += 1
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            onEvent(.step(step: step, of: config.steps, metrics: [
                ("train/loss", lossSum), ("train/learning_rate", Double(lr)), ("train/grad_norm", Double(gradNorm)),
                ("train/tokens_per_second", Double(tokenCount) / seconds), ("train/step_time", seconds),
                ("train/epoch", data.epochProgress),
            ]))
            if config.evalEvery > 0, step % config.evalEvery == 0 || step == config.steps, let evaluate {
                let metrics = try evaluate(model, step)
                onEvent(.evaluation(step: step, metrics: metrics.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))
            }
            if config.checkpointEvery > 0, step % config.checkpointEvery == 0 || step == config.steps, let checkpoint {
                try checkpoint(self)
            }
        }
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

/// What a trainer reports while it runs.
public enum TrainingEvent {
    case step(step: Int, of: Int, metrics: [(String, Double)])
    /// A GRPO step's rollouts, for the rollout store.
    case rollouts(step: Int, records: [RolloutRecord])
    case evaluation(step: Int, metrics: [(String, Double)])
    case checkpoint(step: Int, directory: URL)
    case warning(String)
}

/// Errors that stop training.
public enum TrainingError: Error, CustomStringConvertible {
    case nonFinite(step: Int, what: String, detail: String)

    public var description: String {
        switch self {
        case .nonFinite(let step, let what, let detail):
            return "step \(step): the \(what) is not finite (NaN or inf); the weights were not updated. \(detail)"
        }
    }
}

/// Names the first parameter whose gradient holds NaN or inf.
func firstNonFiniteGradient(_ model: Transformer) -> String {
    for (name, p) in model.namedParameters {
        guard let g = p.gradValues else { continue }
        if let i = g.firstIndex(where: { !$0.isFinite }) { return "First non-finite gradient: \(name)[\(i)] = \(g[i])." }
    }
    return "Every parameter gradient is finite: the loss itself overflowed."
}
