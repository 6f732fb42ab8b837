import Foundation
import GroveData
import GroveModel
import GroveRollout
import GroveTensor
import GroveTokenizer

/// Settings of a `grpo` stage.
public struct GRPOConfig {
    public var steps: Int
    /// Prompts per step (P); each gets `groupSize` completions (G).
    public var promptsPerStep: Int
    public var groupSize: Int
    public var sampling: SamplingOptions
    public var stopStrings: [String] = []
    public var loss: GRPOLossConfig
    public var scaling: AdvantageScaling = .group
    /// Optimizer updates per batch of rollouts (μ); the old log-probs are those of the first.
    public var iterations = 1
    public var learningRate: Float
    public var schedule: LearningRateSchedule = .constant
    public var weightDecay: Float = 0
    /// AdamW's β1, β2 (TRL's defaults).
    public var betas: (Float, Float) = (0.9, 0.99)
    public var maxGradNorm: Float = 1
    /// AdamW's moments in float32 or bfloat16 (half their memory).
    public var optimizerState: AdamW.MomentStorage = .float32
    /// Truncated completions (finish reason `length`) take no part in the loss.
    public var maskTruncated = false
    /// Drop groups whose rewards are all equal and sample more prompts, up to this many extra rounds (0: off).
    public var dynamicSamplingRounds = 0
    /// Padded completion tokens (rows × longest completion) per forward/backward pass of the
    /// training part: the batch is split into micro-batches of similar length under this budget.
    public var microBatchTokens = 4096
    /// Copy the policy into the reference model every N steps (0: never).
    public var refreshReferenceEvery = 0
    public var evalEvery = 0
    public var checkpointEvery = 0
    /// Activation checkpointing in the training part (`Transformer.gradientCheckpointing`): less memory, one more forward.
    public var gradientCheckpointing = false
    /// DeepSeekMoE's balance loss α and bias update γ in the training part (`Transformer.expertBalancing`).
    public var expertBalancing = ExpertBalancing()

    public init(steps: Int, promptsPerStep: Int, groupSize: Int, sampling: SamplingOptions, loss: GRPOLossConfig, learningRate: Float) {
        self.steps = steps; self.promptsPerStep = promptsPerStep; self.groupSize = groupSize
        self.sampling = sampling; self.loss = loss; self.learningRate = learningRate
    }
}

/// One rollout as the store keeps it.
public struct RolloutRecord {
    public let promptId: Int
    public let prompt: String
    /// The dataset row as JSON, nil if it cannot be written as JSON.
    public let row: String?
    public let group: Int
    public let completion: Completion
    public let rewards: [String: Double?]
    public let reward: Double?
    public let advantage: Double
    public let groupMean: Double
    public let groupStd: Double
    /// A group dynamic sampling set aside (all rewards equal): stored, not trained on.
    public let dropped: Bool
}

/// Group Relative Policy Optimization: sample G completions per prompt, score them, turn rewards
/// into group-relative advantages, and maximise the clipped surrogate minus β·KL to a frozen
/// reference policy (`grpoLoss`). No value network.
///
/// ```swift
/// let trainer = GRPOTrainer(policy: model, tokenizer: tok, prompts: stream, rewards: rewards, config: config, seed: 0)
/// try trainer.train { event in … }
/// ```
public final class GRPOTrainer {
    let objective: GRPOObjective
    /// Step count, optimizer, evaluation and checkpoint hooks.
    public let loop: TrainingLoop
    public var policy: Transformer { objective.model }
    public var reference: Transformer? { objective.reference }
    public var prompts: TrainingStream { objective.prompts }
    public var config: GRPOConfig { objective.config }
    public var step: Int { loop.step }
    public var optimizer: AdamW { loop.optimizer }

    /// With a `communicator` of several ranks, each samples, scores and trains on its share of
    /// every step's groups (`GRPOObjective`).
    public init(policy: Transformer, tokenizer: Tokenizer, prompts: TrainingStream, rewards: WeightedRewards, config: GRPOConfig, seed: UInt64,
                communicator: Communicator = SingleProcess()) {
        objective = GRPOObjective(policy: policy, tokenizer: tokenizer, prompts: prompts, rewards: rewards, config: config, seed: seed,
                                  communicator: communicator)
        loop = TrainingLoop(objective: objective, settings: LoopSettings(
            steps: config.steps, learningRate: config.learningRate, schedule: config.schedule, weightDecay: config.weightDecay,
            betas: config.betas, maxGradNorm: config.maxGradNorm, optimizerState: config.optimizerState, evalEvery: config.evalEvery, checkpointEvery: config.checkpointEvery),
            communicator: communicator)
    }

    /// Restores step, step time, optimizer, prompt position and reference weights from a checkpoint.
    public func restore(step: Int, stepSeconds: Double = 0, optimizerState: [String: Tensor], dataPosition: TrainingStream.Position,
                        reference ref: Transformer?) throws {
        try loop.restore(step: step, stepSeconds: stepSeconds, optimizerState: optimizerState)
        try prompts.resume(at: dataPosition)
        if let ref, let mine = reference { mine.copyWeights(from: ref) }
    }

    /// Runs from the current step to `config.steps`.
    public func train(onEvent: (TrainingEvent) throws -> Void) throws {
        let previous = policy.gradientCheckpointing, balancing = policy.expertBalancing
        policy.gradientCheckpointing = config.gradientCheckpointing
        policy.expertBalancing = config.expertBalancing
        defer { policy.gradientCheckpointing = previous; policy.expertBalancing = balancing }
        try loop.run(onEvent: onEvent)
    }
}

/// A GRPO step in three parts: collect rollouts (sample, score, advantages), optimise (the
/// clipped objective over length-sorted micro-batches, μ times), and the step's metrics.
///
/// Data-parallel: every rank reads the same prompts; rank r samples and scores prompts
/// r, r + size, … (a group never splits) and all ranks exchange the scored completions, so each
/// holds the whole step's rollouts, advantages and loss normaliser, as one process would. Each then
/// trains on its share of the groups, balanced by completion tokens; the loop sums the gradients,
/// `finishStep` the metrics.
final class GRPOObjective: TrainingObjective {
    let model: Transformer
    private(set) var reference: Transformer?
    let tokenizer: Tokenizer
    let prompts: TrainingStream
    let rewards: WeightedRewards
    let config: GRPOConfig
    let seed: UInt64
    let communicator: Communicator
    var stream: TrainingStream { prompts }

    init(policy: Transformer, tokenizer: Tokenizer, prompts: TrainingStream, rewards: WeightedRewards, config: GRPOConfig, seed: UInt64,
         communicator: Communicator) {
        model = policy; self.tokenizer = tokenizer; self.prompts = prompts; self.rewards = rewards
        self.config = config; self.seed = seed; self.communicator = communicator
        // β = 0 loads no reference model; with LoRA the reference is the base, the policy with
        // its adapter switched off, so there is no second copy either.
        precondition(policy.adapter == nil || config.refreshReferenceEvery == 0, "GRPO: with LoRA the reference is the base and cannot be refreshed")
        reference = config.loss.beta == 0 || policy.adapter != nil ? nil : policy.clone()
    }

    /// The step's rollouts and what the metrics need of their collection.
    struct Rollouts {
        /// Trained on: groups with signal (and every group when dynamic sampling is off or out of rounds).
        var records: [RolloutRecord] = []
        /// Groups dynamic sampling set aside.
        var dropped: [RolloutRecord] = []
        var generateSeconds = 0.0, scoreSeconds = 0.0
        var zeroStdGroups = 0, groupsSeen = 0
        /// Total reward of every scored completion, and each function's values.
        var allRewards: [Double] = []
        var perFunction: [[Double]]
    }

    /// The optimisation's state within a step: micro-batches, the reference's and the first
    /// update's log-probs, and the loss statistics.
    private var rollouts = Rollouts(perFunction: [])
    private var parts: [PolicyBatch] = []
    private var normalizer = LossNormalizer(sequences: 0, tokens: 0)
    private var referenceLogProbs: [[Float]]?
    private var oldLogProbs: [[Float]] = []
    private var lossMetrics = GRPOLossMetrics()
    private var entropy = (sum: 0.0, count: 0)

    func prepareBatch(step: Int) throws -> Int {
        rollouts = try collectRollouts(step: step)
        let records = rollouts.records
        normalizer = LossNormalizer(sequences: records.count,
                                    tokens: records.reduce(0) { $0 + PolicyBatch.lossTokens($1, maskTruncated: config.maskTruncated) })
        lossMetrics = GRPOLossMetrics()
        entropy = (0, 0)
        // With β = 0 a completion whose advantage is 0 adds exactly nothing to the loss or its
        // gradient (−min(ρ·0, clip(ρ)·0) = 0), so it only counts in the normaliser.
        var trained = config.loss.beta == 0 ? records.filter { $0.advantage != 0 } : records
        if communicator.size > 1 {  // this rank's groups, balanced by completion tokens
            let groups = Dictionary(grouping: trained.indices, by: { trained[$0].group }).sorted { $0.key < $1.key }.map(\.value)
            trained = communicator.balancedShare(groups.map { $0.reduce(0) { $0 + trained[$1].completion.ids.count } })
                .flatMap { groups[$0].map { trained[$0] } }
        }
        let pad = Int32(tokenizer.padTokenId ?? 0)
        let promptTokens = Set(trained.map(\.completion.promptIds)).reduce(0) { $0 + $1.count }
        parts = lengthSortedMicroBatches(lengths: trained.map { $0.completion.ids.count }, tokenBudget: config.microBatchTokens,
                                         partOverhead: promptTokens)
            .map { PolicyBatch($0.map { trained[$0] }, maskTruncated: config.maskTruncated, pad: pad) }
        let temperature = config.sampling.temperature
        func logProbs(_ m: Transformer) -> [[Float]] {
            GradMode.withoutGrad { parts.map { $0.tokenLogProbs(m, temperature: temperature).logp.values } }
        }
        referenceLogProbs = config.loss.beta == 0 ? nil : reference.map(logProbs) ?? model.withAdapterDisabled { logProbs(model) }
        oldLogProbs = []
        // With no rollouts there is nothing to update on; with rows but none trained the optimizer
        // still steps (momentum, decay), as with zero gradients.
        return records.isEmpty ? 0 : config.iterations
    }

    /// 1. Rollouts: P prompts × G completions, scored and turned into advantages; with dynamic
    ///    sampling, groups whose rewards are all equal are set aside and more prompts sampled.
    func collectRollouts(step: Int) throws -> Rollouts {
        var out = Rollouts(perFunction: Array(repeating: [], count: rewards.rewards.count))
        var rounds = 0
        repeat {
            let rows = prompts.nextRows(config.promptsPerStep - out.records.count / config.groupSize)
            let examples = try rows.map { try prompts.prompt($0) }
            let mine = communicator.share(rows.count)
            let g0 = now()
            let engine = RolloutEngine(model: model, tokenizer: tokenizer, options: config.sampling, stopStrings: config.stopStrings)
            let sampled = engine.rollouts(prompts: mine.map { examples[$0].prompt }, promptIds: mine.map { rows[$0] },
                                          groupSize: config.groupSize, seed: seed, step: step * 16 + rounds).map { $0.inGroup(mine[$0.group]) }
            let s0 = now()
            out.generateSeconds += s0 - g0
            let inputs = sampled.map { RewardInput(prompt: examples[$0.group].prompt, completion: $0.text, completionIds: $0.ids,
                                                   row: examples[$0.group].row) }
            let scores = inputs.isEmpty ? [] : try rewards.score(inputs).perFunction
            let (completions, perFunction) = communicator.size == 1 ? (sampled, scores) : communicator.exchange(sampled, scores: scores)
            out.scoreSeconds += now() - s0
            let totals = GroupAdvantage.totalRewards(perFunction, weights: rewards.weights)
            let rowJSON = examples.map { e in
                (try? JSONSerialization.data(withJSONObject: e.row, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) }
            }
            let advantages = GroupAdvantage.compute(totals, groupSize: config.groupSize, scaling: config.scaling)
            let stats = GroupAdvantage.groupStatistics(totals, groupSize: config.groupSize)
            for f in rewards.rewards.indices { out.perFunction[f] += perFunction.compactMap { $0[f] } }
            out.allRewards += totals.compactMap { $0 }
            for (gi, stat) in stats.enumerated() {
                out.groupsSeen += 1
                if stat.zeroStd { out.zeroStdGroups += 1 }
                let drop = stat.zeroStd && config.dynamicSamplingRounds > 0 && rounds < config.dynamicSamplingRounds
                // Kept groups are numbered 0..<P in the order they are kept; dropped ones after them.
                let group = drop ? config.promptsPerStep + out.dropped.count / config.groupSize : out.records.count / config.groupSize
                for c in completions[gi * config.groupSize..<(gi + 1) * config.groupSize] {
                    let i = gi * config.groupSize + c.sample
                    let named = Dictionary(uniqueKeysWithValues: rewards.rewards.enumerated().map { ($1.reward.name, perFunction[i][$0]) })
                    let record = RolloutRecord(promptId: rows[gi], prompt: examples[gi].prompt, row: rowJSON[gi], group: group,
                                               completion: c, rewards: named, reward: totals[i], advantage: advantages[i],
                                               groupMean: stat.mean, groupStd: stat.std, dropped: drop)
                    if drop { out.dropped.append(record) } else { out.records.append(record) }
                }
            }
            rounds += 1
        } while out.records.count < config.promptsPerStep * config.groupSize && rounds <= config.dynamicSamplingRounds
        return out
    }

    /// 2. The clipped objective on the step's rollouts. The batch goes through the model in
    ///    micro-batches of similar length, each padded only to its own longest row; their
    ///    gradients add up to the whole batch's (the loss is normalised over the whole batch).
    ///    The old log-probs are those of the first update (μ = 1: the ratio is exactly 1).
    func accumulateGradients(update: Int) throws -> Double {
        let temperature = config.sampling.temperature
        var total = 0.0
        for (k, part) in parts.enumerated() {
            let (logp, h) = part.tokenLogProbs(model, temperature: temperature, entropy: update == 0)
            if update == 0 {
                oldLogProbs.append(logp.values)
                entropy = (entropy.sum + h.sum, entropy.count + h.count)
            }
            let (loss, metrics) = grpoLoss(logp: logp, old: oldLogProbs[k], ref: referenceLogProbs?[k], advantages: part.advantages,
                                           mask: part.mask, batch: part.batch, config: config.loss, normalizer: normalizer)
            if update == 0 { lossMetrics.merge(metrics) }
            total += Double(loss.item)
            guard total.isFinite else { return total }  // the loop stops the run before any update
            // The MoE balance loss of this micro-batch, as its share of the batch.
            (model.takeBalanceLoss().map { add(loss, scale($0, 1 / Float(parts.count))) } ?? loss).backward()
        }
        return total
    }

    /// 3. The step's metrics, named as TRL logs them.
    func finishStep(_ outcome: StepOutcome) -> StepReport {
        if config.refreshReferenceEvery > 0, outcome.step % config.refreshReferenceEvery == 0 { reference?.copyWeights(from: model) }
        if communicator.size > 1 { (lossMetrics, entropy) = communicator.merge(lossMetrics, entropy: entropy) }
        let records = rollouts.records
        // The rows left out: no clipped tokens, so the metrics are those of the whole batch.
        let skippedTokens = normalizer.tokens - lossMetrics.tokens
        if skippedTokens > 0 { lossMetrics.merge(GRPOLossMetrics(tokens: skippedTokens, clipLowMin: 0, clipHighMax: 0)) }
        let lengths = records.map { Double($0.completion.ids.count) }
        let (mean, std) = GroupAdvantage.meanStd(rollouts.allRewards)
        let tokens = lengths.reduce(0, +) + Double(records.reduce(0) { $0 + $1.completion.promptIds.count })
        let metrics = GRPOStepMetrics(
            reward: mean, rewardStd: std, zeroStdShare: Double(rollouts.zeroStdGroups) / Double(max(rollouts.groupsSeen, 1)),
            loss: outcome.loss, gradNorm: Double(outcome.gradNorm),
            kl: lossMetrics.kl, entropy: entropy.count == 0 ? .nan : entropy.sum / Double(entropy.count),
            clipLow: lossMetrics.clipLowMean, clipHigh: lossMetrics.clipHighMean, clipRegion: lossMetrics.clipRegionMean,
            meanLength: lengths.isEmpty ? 0 : lengths.reduce(0, +) / Double(lengths.count),
            minLength: lengths.min() ?? 0, maxLength: lengths.max() ?? 0,
            truncatedShare: Double(records.filter { $0.completion.finishReason == .length }.count) / Double(max(records.count, 1)),
            droppedGroups: rollouts.dropped.count / config.groupSize, learningRate: Double(outcome.learningRate),
            generateSeconds: rollouts.generateSeconds, scoreSeconds: rollouts.scoreSeconds, trainSeconds: outcome.updateSeconds,
            seconds: outcome.seconds, tokens: tokens, expertLoads: outcome.expertLoads,
            perReward: rewards.rewards.enumerated().map { f, r in
                let values = rollouts.perFunction[f]
                return values.isEmpty ? (r.reward.name, .nan, .nan) : { let s = GroupAdvantage.meanStd(values); return (r.reward.name, s.mean, s.std) }()
            })
        return StepReport(step: outcome.step, of: config.steps, metrics: metrics, tokens: tokens, seconds: outcome.seconds,
                          rollouts: records + rollouts.dropped, warnings: metrics.warnings)
    }

    func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}

/// A GRPO (micro-)batch as the model sees it: each distinct prompt once, its completions as
/// suffixes that attend to it (`SharedPrefixBatch`), and per completion position the hidden row
/// that predicts it (the prompt's last token for the first one), its target and the loss mask.
struct PolicyBatch {
    let input: SharedPrefixBatch
    let targetRows: [Int32]  // (B, Ls): hidden row predicting completion token t of row b
    let targets: [Int32]     // (B, Ls): completion token t, −1 on padding
    let mask: [Bool]         // (B, Ls)
    let advantages: [Float]
    var batch: Int { input.suffixCount }

    init(_ records: [RolloutRecord], maskTruncated: Bool, pad: Int32) {
        precondition(records.allSatisfy { !$0.completion.promptIds.isEmpty }, "GRPO: an empty prompt has no token to predict the completion from")
        input = SharedPrefixBatch(prompts: records.map(\.completion.promptIds), suffixes: records.map(\.completion.ids), pad: pad)
        let Ls = input.suffixLength
        var rows = [Int32](repeating: 0, count: records.count * Ls), targets = [Int32](repeating: -1, count: rows.count)
        for (b, r) in records.enumerated() {
            let lossTokens = PolicyBatch.lossTokens(r, maskTruncated: maskTruncated)
            for t in 0..<Ls {
                rows[b * Ls + t] = Int32(t == 0 ? input.lastPrefixRow(input.prefixOf[b]) : input.suffixRow(b, t - 1))
                if t < lossTokens { targets[b * Ls + t] = r.completion.ids[t] }
            }
        }
        targetRows = rows
        self.targets = targets
        mask = targets.map { $0 >= 0 }
        advantages = records.map { Float($0.advantage) }
    }

    /// Log-probs [B·Ls] of the targets under the model's distribution divided by the sampling
    /// temperature, from the hidden states at the target rows through the LM head in row chunks
    /// (`linearTokenLogProbs`: the B·Ls × V logits are never held at once). With `entropy`, also
    /// the sum of the distribution's entropy over the masked positions, and their count.
    func tokenLogProbs(_ model: Transformer, temperature: Float, entropy: Bool = false) -> (logp: Tensor, entropy: (sum: Double, count: Int)) {
        let hidden = gatherRows(model.hiddenStates(input), targetRows)
        let (logp, h) = linearTokenLogProbs(hidden, model.lmHead, scale: 1 / max(temperature, 1e-6), targets: targets,
                                            entropyRows: entropy ? mask : nil)
        guard entropy else { return (logp, (0, 0)) }
        var total = 0.0, n = 0
        for i in mask.indices where mask[i] { total += Double(h[i]); n += 1 }
        return (logp, (total, n))
    }

    /// Positions of `record` that take part in the loss (the count of its mask entries).
    static func lossTokens(_ record: RolloutRecord, maskTruncated: Bool) -> Int {
        maskTruncated && record.completion.finishReason == .length ? 0 : record.completion.ids.count
    }
}
