import Foundation
import GroveModel
import GroveTensor

/// What a trainer does inside a step, as the training loop drives it. SFT and GRPO each
/// implement this; the loop owns everything else (step count, schedule, optimizer, clipping,
/// the non-finite guard, evaluation and checkpoint cadence, timing).
protocol TrainingObjective: AnyObject {
    /// The model whose parameters the optimizer updates.
    var model: Transformer { get }
    /// The rows the steps read (SFT's examples, GRPO's prompts).
    var stream: TrainingStream { get }
    /// Readies step `step`'s batch (SFT: the next examples; GRPO: sampled and scored rollouts)
    /// and returns how many optimizer updates it gets (GRPO's μ, or 0 with no rollouts).
    func prepareBatch(step: Int) throws -> Int
    /// Adds ∂loss/∂θ of update `update` on the prepared batch into the parameters' gradients
    /// (zeroed by the loop) and returns the loss (a data-parallel rank: its share's part of it).
    func accumulateGradients(update: Int) throws -> Double
    /// The finished step's report: its metrics, and for GRPO its rollouts. In a data-parallel
    /// run every rank calls it and gets the whole batch's report.
    func finishStep(_ outcome: StepOutcome) -> StepReport
}

/// What the loop measured of one step, for the objective's metrics.
struct StepOutcome {
    var step: Int
    var learningRate: Float
    /// Loss and gradient norm (before clipping) of the first update.
    var loss: Double
    var gradNorm: Float
    /// Wall time of the whole step, and of its updates (after the batch was ready).
    var seconds: Double
    var updateSeconds: Double
    /// Tokens per expert of each MoE layer over the step's training forward passes.
    var expertLoads: [ExpertLoad] = []
}

/// A finished training step, as the run layer receives it.
public struct StepReport {
    public let step: Int
    public let of: Int
    public let metrics: any StepMetrics
    /// Tokens the step trained on, for throughput.
    public let tokens: Double
    public let seconds: Double
    /// GRPO: every rollout of the step, trained and dropped.
    public let rollouts: [RolloutRecord]
    public let warnings: [String]
}

/// What a trainer reports while it runs.
public enum TrainingEvent {
    /// A finished step. A handler that throws (run.sqlite cannot be written) stops the run,
    /// after a checkpoint of the step.
    case step(StepReport)
    case evaluation(step: Int, EvalMetrics)
    case warning(String)
}

/// The settings the training loop reads, common to every stage kind.
public struct LoopSettings {
    public var steps: Int
    public var learningRate: Float
    public var schedule: LearningRateSchedule
    public var weightDecay: Float
    public var betas: (Float, Float)
    public var maxGradNorm: Float
    /// AdamW's moments in float32 or bfloat16 (`optimizer_state`).
    public var optimizerState: AdamW.MomentStorage = .float32
    /// Evaluate / checkpoint every N steps and at the last (0: never).
    public var evalEvery: Int
    public var checkpointEvery: Int
}

/// The one training loop: for each step, the objective readies a batch; then for each of its
/// updates the loop zeroes the gradients, has the objective accumulate them, clips their
/// norm, refuses a non-finite loss or gradient, and steps AdamW at the scheduled rate.
///
/// A data-parallel run (`communicator.size > 1`) sums the ranks' gradients and losses between
/// `accumulateGradients` and the clip, so each rank clips and steps on the whole batch's gradient.
public final class TrainingLoop {
    let objective: TrainingObjective
    public let settings: LoopSettings
    public let optimizer: AdamW
    let communicator: Communicator
    private let allReduce: GradientAllReduce?
    /// Compare a checksum of the weights across ranks after every step, and stop at the first
    /// difference (a debugging aid: it reads every weight each step).
    public var checkReplicas = false
    /// Steps done.
    public private(set) var step = 0
    /// Wall time of the steps done, over this process and any run it resumed.
    public private(set) var stepSeconds = 0.0
    /// Held-out evaluation of the model at a step, when the stage evaluates.
    public var evaluate: ((Int) throws -> EvalMetrics)?
    /// Saves a checkpoint after a step.
    public var checkpoint: ((Int) throws -> Void)?

    init(objective: TrainingObjective, settings: LoopSettings, communicator: Communicator) {
        self.objective = objective
        self.settings = settings
        self.communicator = communicator
        allReduce = communicator.size > 1 ? GradientAllReduce(communicator: communicator, parameters: objective.model.parameters) : nil
        optimizer = AdamW(parameters: objective.model.decayGroups, beta1: settings.betas.0, beta2: settings.betas.1,
                          weightDecay: settings.weightDecay, momentStorage: settings.optimizerState)
    }

    /// Continues from a checkpoint's step, step time and optimizer moments.
    public func restore(step: Int, stepSeconds: Double, optimizerState: [String: Tensor]) throws {
        guard (0...settings.steps).contains(step) else {
            throw TrainingError.badCheckpoint("it is at step \(step) of a stage of \(settings.steps) steps")
        }
        guard stepSeconds.isFinite, stepSeconds >= 0 else { throw TrainingError.badCheckpoint("its step time is \(stepSeconds) s") }
        self.step = step
        self.stepSeconds = stepSeconds
        try optimizer.loadState(optimizerState)
    }

    /// Runs from the current step to `settings.steps`.
    ///
    /// A failure that leaves the weights finite (a reward program that crashed, a full disk)
    /// checkpoints the last whole step before it stops the run, so `--resume` loses nothing.
    public func run(onEvent: (TrainingEvent) throws -> Void) throws {
        let params = objective.model.parameters
        while step < settings.steps {
            let started = now()
            let position = objective.stream.position
            // Each rank draws its own LoRA dropout masks (one process: the step's stream, as before).
            objective.model.seedDropout(step: step * communicator.size + communicator.rank)
            let updates: Int
            do { updates = try objective.prepareBatch(step: step) } catch {
                objective.stream.seek(to: position)  // the checkpoint resumes at this step's batch
                try? checkpoint?(step)
                throw error
            }
            let updatesStarted = now()
            let lr = settings.schedule.lr(step: step, base: settings.learningRate)
            var loss = 0.0, gradNorm: Float = 0
            for update in 0..<updates {
                for p in params { p.zeroGrad() }
                var l = try objective.accumulateGradients(update: update)
                if let allReduce { l = allReduce(loss: l) }
                let norm = clipGradNorm(params, maxNorm: settings.maxGradNorm)
                guard l.isFinite, norm.isFinite else {
                    throw TrainingError.nonFinite(step: step + 1, what: l.isFinite ? "gradient norm" : "loss",
                                                  detail: firstNonFiniteGradient(objective.model))
                }
                if update == 0 { (loss, gradNorm) = (l, norm) }
                optimizer.step(lr: lr)
            }
            // DeepSeekMoE: the step's routing counts (over all ranks), and V3's bias moved toward balance by them.
            let loads = communicator.sum(objective.model.takeExpertLoads(), layers: objective.model.mixtureOfExpertsLayers)
            objective.model.updateRoutingBias(loads)
            _ = objective.model.takeBalanceLoss()  // terms of forward passes that took no gradient step
            // Not read again before the next step's backward: meanwhile their memory can hold
            // other buffers (the rollouts' decode copy of the weights); refilled with zeros on first use.
            for p in params { p.dropGrad() }
            step += 1
            if checkReplicas, let (rank, theirs, ours) = communicator.firstDisagreeing(weightsChecksum(params)) {
                throw DataParallelError("after step \(step) rank \(rank) holds other weights than rank 0 (checksum \(theirs), rank 0 \(ours))")
            }
            let seconds = now() - started
            stepSeconds += seconds
            let report = objective.finishStep(StepOutcome(step: step, learningRate: lr, loss: loss, gradNorm: gradNorm,
                                                          seconds: seconds, updateSeconds: now() - updatesStarted, expertLoads: loads))
            do { try onEvent(.step(report)) } catch {
                try? checkpoint?(step)
                throw error
            }
            for w in report.warnings { try onEvent(.warning("step \(step): \(w)")) }
            if settings.evalEvery > 0, step % settings.evalEvery == 0 || step == settings.steps, let evaluate {
                try onEvent(.evaluation(step: step, try evaluate(step)))
            }
            if settings.checkpointEvery > 0, step % settings.checkpointEvery == 0 || step == settings.steps, let checkpoint {
                try checkpoint(step)
            }
        }
    }

    func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}

/// Errors that stop training.
public enum TrainingError: Error, CustomStringConvertible {
    case nonFinite(step: Int, what: String, detail: String)
    /// A checkpoint whose state cannot be this run's.
    case badCheckpoint(String)

    public var description: String {
        switch self {
        case .nonFinite(let step, let what, let detail):
            return "step \(step): the \(what) is not finite (NaN or inf); the weights were not updated. \(detail)"
        case .badCheckpoint(let problem):
            return "the checkpoint cannot be resumed: \(problem)"
        }
    }
}

/// Names the first parameter whose gradient holds NaN or inf.
func firstNonFiniteGradient(_ model: Transformer) -> String {
    for (name, p) in model.trainableParameters {
        guard let g = p.gradValues else { continue }
        if let i = g.firstIndex(where: { !$0.isFinite }) { return "First non-finite gradient: \(name)[\(i)] = \(g[i])." }
    }
    return "Every parameter gradient is finite: the loss itself overflowed."
}

extension Transformer {
    /// Parameters with their weight-decay flag: matrices decay; biases and norm weights
    /// (1-D tensors) do not, as in GPT-2/nanoGPT and HF's default grouping.
    public var decayGroups: [(Tensor, decay: Bool)] {
        parameters.map { ($0, $0.shape.count >= 2) }
    }
}
