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
    public var betas: (Float, Float) = (0.9, 0.99)
    public var maxGradNorm: Float = 1
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
    public let policy: Transformer
    public private(set) var reference: Transformer?
    public let tokenizer: Tokenizer
    public let prompts: TrainingStream
    public let rewards: WeightedRewards
    public let config: GRPOConfig
    public let seed: UInt64
    public let optimizer: AdamW
    public private(set) var step = 0
    public var evaluate: ((Transformer, Int) throws -> [String: Double])?
    public var checkpoint: ((GRPOTrainer) throws -> Void)?

    public init(policy: Transformer, tokenizer: Tokenizer, prompts: TrainingStream, rewards: WeightedRewards, config: GRPOConfig, seed: UInt64) {
        self.policy = policy; self.tokenizer = tokenizer; self.prompts = prompts; self.rewards = rewards
        self.config = config; self.seed = seed
        optimizer = AdamW(parameters: policy.decayGroups, beta1: config.betas.0, beta2: config.betas.1, weightDecay: config.weightDecay)
        // β = 0 loads no reference model.
        reference = config.loss.beta == 0 ? nil : policy.clone()
    }

    /// Restores step, optimizer, prompt position and reference weights from a checkpoint.
    public func restore(step: Int, optimizerState: [String: Tensor], dataPosition: TrainingStream.Position, reference ref: Transformer?) throws {
        self.step = step
        try optimizer.loadState(optimizerState)
        prompts.seek(to: dataPosition)
        if let ref, let mine = reference { mine.copyWeights(from: ref) }
    }

    public func train(onEvent: (TrainingEvent) -> Void) throws {
        while step < config.steps {
            let t0 = now()
            // 1. Rollouts, with dynamic sampling of groups that carry signal.
            var records: [RolloutRecord] = []
            var dropped = 0, rounds = 0, generateSeconds = 0.0, scoreSeconds = 0.0
            var perFunctionSums = [Double](repeating: 0, count: rewards.rewards.count), perFunctionCounts = perFunctionSums
            var allRewards: [Double] = [], zeroStdGroups = 0, groupsSeen = 0
            repeat {
                let rows = prompts.nextRows(config.promptsPerStep - records.count / config.groupSize)
                let examples = try rows.map { try prompts.prompt($0) }
                let g0 = now()
                let engine = RolloutEngine(model: policy, tokenizer: tokenizer, options: config.sampling, stopStrings: config.stopStrings)
                let completions = engine.rollouts(prompts: examples.map(\.prompt), promptIds: rows, groupSize: config.groupSize,
                                                  seed: seed, step: step * 16 + rounds)
                let s0 = now()
                generateSeconds += s0 - g0
                let inputs = completions.map { RewardInput(prompt: examples[$0.group].prompt, completion: $0.text, completionIds: $0.ids,
                                                           row: examples[$0.group].row) }
                let (perFunction, _) = try rewards.score(inputs)
                scoreSeconds += now() - s0
                let totals = GroupAdvantage.totalRewards(perFunction, weights: rewards.weights)
                let rowJSON = examples.map { e in
                    (try? JSONSerialization.data(withJSONObject: e.row, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) }
                }
                let advantages = GroupAdvantage.compute(totals, groupSize: config.groupSize, scaling: config.scaling)
                let stats = GroupAdvantage.groupStatistics(totals, groupSize: config.groupSize)
                for (f, _) in rewards.rewards.enumerated() {
                    for values in perFunction { if let v = values[f] { perFunctionSums[f] += v; perFunctionCounts[f] += 1 } }
                }
                allRewards += totals.compactMap { $0 }
                for (gi, stat) in stats.enumerated() {
                    groupsSeen += 1
                    if stat.zeroStd { zeroStdGroups += 1 }
                    if stat.zeroStd && config.dynamicSamplingRounds > 0 && rounds < config.dynamicSamplingRounds { dropped += 1; continue }
                    for c in completions[gi * config.groupSize..<(gi + 1) * config.groupSize] {
                        let i = gi * config.groupSize + c.sample
                        let named = Dictionary(uniqueKeysWithValues: rewards.rewards.enumerated().map { ($1.reward.name, perFunction[i][$0]) })
                        records.append(RolloutRecord(promptId: rows[gi], prompt: examples[gi].prompt, row: rowJSON[gi],
                                                     group: records.count / config.groupSize,
                                                     completion: c, rewards: named, reward: totals[i], advantage: advantages[i],
                                                     groupMean: stat.mean, groupStd: stat.std))
                    }
                }
                rounds += 1
            } while records.count < config.promptsPerStep * config.groupSize && rounds <= config.dynamicSamplingRounds

            // 2. The clipped objective, μ updates on this batch. The batch goes through the model in
            //    micro-batches of similar length, each padded only to its own longest row; their
            //    gradients add up to the whole batch's (the loss is normalised over the whole batch).
            //    With β = 0 a completion whose advantage is 0 adds exactly nothing to the loss or its
            //    gradient (−min(ρ·0, clip(ρ)·0) = 0), so it only counts in the normaliser.
            let t1 = now()
            let lr = config.schedule.lr(step: step, base: config.learningRate)
            var lossMetrics = GRPOLossMetrics(), entropy = (sum: 0.0, count: 0)
            let pad = Int32(tokenizer.padTokenId ?? 0)
            let normalizer = LossNormalizer(sequences: records.count,
                                            tokens: records.reduce(0) { $0 + PolicyBatch.lossTokens($1, maskTruncated: config.maskTruncated) })
            let trained = config.loss.beta == 0 ? records.filter { $0.advantage != 0 } : records
            if !records.isEmpty {  // with no row trained the optimizer still steps (momentum, decay), as with zero gradients
                let promptTokens = Set(trained.map(\.completion.promptIds)).reduce(0) { $0 + $1.count }
                let parts = lengthSortedMicroBatches(lengths: trained.map { $0.completion.ids.count }, tokenBudget: config.microBatchTokens,
                                                     partOverhead: promptTokens)
                    .map { PolicyBatch($0.map { trained[$0] }, maskTruncated: config.maskTruncated, pad: pad) }
                let temperature = config.sampling.temperature
                let ref = reference.map { r in GradMode.withoutGrad { parts.map { tokenLogProbs($0.logits(r, temperature: temperature), targets: $0.targets).values } } }
                var old = [[Float]](repeating: [], count: parts.count)
                for iteration in 0..<config.iterations {
                    for p in policy.parameters { p.zeroGrad() }
                    for (k, part) in parts.enumerated() {
                        let logits = part.logits(policy, temperature: temperature)
                        let logp = tokenLogProbs(logits, targets: part.targets)
                        if iteration == 0 {
                            old[k] = logp.values  // μ = 1: the ratio is exactly 1
                            let h = GradMode.withoutGrad { PolicyBatch.entropySum(logits, mask: part.mask) }
                            entropy = (entropy.sum + h.sum, entropy.count + h.count)
                        }
                        let (loss, metrics) = grpoLoss(logp: logp, old: old[k], ref: ref?[k], advantages: part.advantages,
                                                       mask: part.mask, batch: part.batch, config: config.loss, normalizer: normalizer)
                        if iteration == 0 { lossMetrics.merge(metrics) }
                        guard loss.item.isFinite else {
                            throw TrainingError.nonFinite(step: step + 1, what: "GRPO loss", detail: "Check the rewards and the log-probs.")
                        }
                        loss.backward()
                    }
                    let norm = clipGradNorm(policy.parameters, maxNorm: config.maxGradNorm)
                    guard norm.isFinite else {
                        throw TrainingError.nonFinite(step: step + 1, what: "gradient norm", detail: firstNonFiniteGradient(policy))
                    }
                    optimizer.step(lr: lr)
                }
            }
            // The rows left out: no clipped tokens, so the metrics are those of the whole batch.
            let skippedTokens = normalizer.tokens - lossMetrics.tokens
            if skippedTokens > 0 { lossMetrics.merge(GRPOLossMetrics(tokens: skippedTokens, clipLowMin: 0, clipHighMax: 0)) }
            step += 1
            if config.refreshReferenceEvery > 0, step % config.refreshReferenceEvery == 0 { reference?.copyWeights(from: policy) }
            let trainSeconds = now() - t1, total = now() - t0

            // 3. Metrics, named as TRL logs them.
            let lengths = records.map { Double($0.completion.ids.count) }
            let (mean, std) = GroupAdvantage.meanStd(allRewards)
            var metrics: [(String, Double)] = [
                ("reward", mean), ("reward_std", std), ("frac_reward_zero_std", Double(zeroStdGroups) / Double(max(groupsSeen, 1))),
                ("kl", lossMetrics.kl), ("entropy", entropy.count == 0 ? .nan : entropy.sum / Double(entropy.count)),
                ("clip_ratio/low_mean", lossMetrics.clipLowMean), ("clip_ratio/high_mean", lossMetrics.clipHighMean),
                ("clip_ratio/region_mean", lossMetrics.clipRegionMean),
                ("completions/mean_length", lengths.isEmpty ? 0 : lengths.reduce(0, +) / Double(lengths.count)),
                ("completions/min_length", lengths.min() ?? 0), ("completions/max_length", lengths.max() ?? 0),
                ("completions/clipped_ratio", Double(records.filter { $0.completion.finishReason == .length }.count) / Double(max(records.count, 1))),
                ("dynamic_sampling/dropped_groups", Double(dropped)), ("learning_rate", Double(lr)),
                ("time/generate", generateSeconds), ("time/score", scoreSeconds), ("time/train", trainSeconds), ("time/step", total),
                ("tokens_per_second", (lengths.reduce(0, +) + Double(records.reduce(0) { $0 + $1.completion.promptIds.count })) / total),
            ]
            for (f, r) in rewards.rewards.enumerated() {
                metrics.append(("rewards/\(r.reward.name)/mean", perFunctionCounts[f] > 0 ? perFunctionSums[f] / perFunctionCounts[f] : .nan))
            }
            onEvent(.rollouts(step: step, records: records))
            onEvent(.step(step: step, of: config.steps, metrics: metrics))
            let zeroStd = Double(zeroStdGroups) / Double(max(groupsSeen, 1))
            let clipped = metrics.first { $0.0 == "completions/clipped_ratio" }!.1
            if zeroStd > 0.9 { onEvent(.warning("step \(step): \(Int(zeroStd * 100))% of groups had equal rewards: they carry no signal")) }
            if clipped > 0.9 { onEvent(.warning("step \(step): \(Int(clipped * 100))% of completions hit max_new_tokens: raise it or shorten answers")) }
            if config.evalEvery > 0, step % config.evalEvery == 0 || step == config.steps, let evaluate {
                onEvent(.evaluation(step: step, metrics: try evaluate(policy, step).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))
            }
            if config.checkpointEvery > 0, step % config.checkpointEvery == 0 || step == config.steps, let checkpoint { try checkpoint(self) }
        }
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

    /// Logits (divided by the sampling temperature) at the target rows [B·Ls, V].
    func logits(_ model: Transformer, temperature: Float) -> Tensor {
        scale(model.logits(gatherRows(model.hiddenStates(input), targetRows)), 1 / max(temperature, 1e-6))
    }

    /// Positions of `record` that take part in the loss (the count of its mask entries).
    static func lossTokens(_ record: RolloutRecord, maskTruncated: Bool) -> Int {
        maskTruncated && record.completion.finishReason == .length ? 0 : record.completion.ids.count
    }

    /// Sum of the predicted distribution's entropy over the masked positions, and their count.
    /// One exp per logit: with e_v = exp(x_v − m) and Z = Σ e_v,
    ///   H = −Σ p_v log p_v = log Z − Σ e_v (x_v − m) / Z.
    static func entropySum(_ logits: Tensor, mask: [Bool]) -> (sum: Double, count: Int) {
        let V = logits.shape.last!
        var total = 0.0, n = 0
        for i in 0..<mask.count where mask[i] {
            let row = logits.data + i * V
            var m = -Float.infinity
            for v in 0..<V { m = max(m, row[v]) }
            var z: Float = 0, weighted: Float = 0
            for v in 0..<V {
                let d = row[v] - m, e = expf(d)
                z += e; weighted += e * d
            }
            total += Double(logf(z) - weighted / z); n += 1
        }
        return (total, n)
    }
}
