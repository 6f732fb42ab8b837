import Foundation
import GroveData
import GroveModel
import GroveRollout
import Rewards
import GroveStore
import GroveTasks
import GroveTensor
import GroveTokenizer
import GroveTrain

/// Wires a recipe to the trainers: builds or loads the model, reads the data, runs each
/// stage, sends trainer events to the progress bar and run.sqlite, checkpoints, reports.
final class RecipeRunner {
    let recipe: Recipe
    let resume: Bool
    let progress = Progress()
    let checkpoints: URL

    init(recipe: Recipe, resume: Bool) {
        self.recipe = recipe
        self.resume = resume
        checkpoints = recipe.outputDir.appendingPathComponent("checkpoints")
    }

    func run() throws {
        let fm = FileManager.default
        try fm.createDirectory(at: recipe.outputDir, withIntermediateDirectories: true)
        let latest = TrainingCheckpoint.latest(under: checkpoints)
        if latest != nil && !resume {
            throw RunError("\(recipe.outputDir.path) already holds checkpoints of an earlier run: pass --resume to continue it, or remove the folder (or change output_dir) to start over")
        }
        let restored = try latest.map { try TrainingCheckpoint.loadState(from: $0) }
        let store = try RunStore(path: recipe.outputDir.appendingPathComponent("run.sqlite"))
        let runID = try store.beginRun(name: recipe.name, recipePath: recipe.file, recipeText: recipe.text, seed: recipe.seed,
                                       groveVersion: GroveVersion.string, resumedFrom: restored?.state.runID)
        // Ctrl-C or a polite kill: record the run as interrupted (checkpoints stay), then exit.
        let signals = [SIGINT, SIGTERM].map { sig -> DispatchSourceSignal in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                try? store.finishRun(runID, status: .interrupted, error: "stopped by signal \(sig)")
                FileHandle.standardError.write(Data("\ngrove: interrupted; continue with `grove run \(self.recipe.file) --resume`\n".utf8))
                exit(130)
            }
            source.resume()
            return source
        }
        defer { signals.forEach { $0.cancel() } }
        do {
            try execute(store: store, runID: runID, from: latest, restored: restored)
            try store.finishRun(runID, status: .finished)
        } catch {
            try? store.finishRun(runID, status: .failed, error: "\(error)")
            throw error
        }
    }

    func execute(store: RunStore, runID: Int64, from checkpoint: URL?, restored: (state: TrainerState, optimizer: [String: Tensor])?) throws {
        let blas = BLAS.shared
        progress.note("Grove \(GroveVersion.string) · \(recipe.name) · seed \(recipe.seed) · BLAS \(blas.coreName), \(blas.threads) threads")
        let trainFile = try JSONLFile(url: recipe.data.train)
        let (model, tokenizer) = try buildModel(from: checkpoint, trainFile: trainFile)
        progress.note("model: \(model.config.modelType.rawValue), \(model.parameterCount.formatted()) parameters, vocabulary \(tokenizer.vocabSize)")
        let (trainRows, evaluator) = try prepareData(trainFile: trainFile, tokenizer: tokenizer)
        progress.note("data: \(trainRows.count) training rows, \(evaluator.examples.count) held-out")

        var before: [String: Double]?
        if restored == nil {
            before = evaluator.evaluate(model).metrics
            try store.log(run: runID, stage: "0:\(recipe.stages[0].kind)", step: 0, metrics: before!.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                          wallTime: progress.elapsed)
            progress.note("before training: " + RecipeRunner.summary(before!))
        }
        var after = before ?? [:]
        var trainSeconds = 0.0, trainTokens = 0.0, controls: [String] = []
        let firstStage = restored?.state.stageIndex ?? 0
        for (index, stage) in recipe.stages.enumerated() where index >= firstStage {
            try store.beginStage(run: runID, index: index, kind: stage.kind)
            let label = "\(index):\(stage.kind)"
            let resumeHere = restored.flatMap { $0.state.stageIndex == index ? $0 : nil }
            let log = StageLog(label: label, kind: stage.kind, store: store, runID: runID, progress: progress,
                               firstStep: resumeHere?.state.step ?? 0)
            let atStart = after
            let evaluate: (Transformer, Int) throws -> [String: Double] = { model, _ in evaluator.evaluate(model).metrics }
            let save: (Int, TrainingStream.Position, AdamW, Transformer?) throws -> Void = { [self] step, position, optimizer, reference in
                let state = TrainerState(stageIndex: index, step: step, dataPosition: position, seed: recipe.seed, runID: runID)
                let dir = try TrainingCheckpoint.save(model: model, tokenizer: tokenizer, optimizer: optimizer, state: state,
                                                      reference: reference, under: checkpoints)
                progress.note("checkpoint: \(dir.path)")
            }
            let lastStep: Int
            var controlStart: Transformer?
            switch stage {
            case .sft(let config):
                let stream = TrainingStream(file: trainFile, rows: trainRows, format: recipe.data.format, tokenizer: tokenizer,
                                            maxLength: config.maxLength, seed: recipe.seed &+ UInt64(index))
                let trainer = SFTTrainer(model: model, data: stream, config: config)
                if let r = resumeHere { try trainer.restore(step: r.state.step, optimizerState: r.optimizer, dataPosition: r.state.dataPosition) }
                trainer.evaluate = evaluate
                trainer.checkpoint = { t in try save(t.step, t.data.position, t.optimizer, nil) }
                try trainer.train(onEvent: log.handle)
                lastStep = trainer.step
            case .grpo(let g):
                if g.sftControl { controlStart = try controlStartModel(stage: index, model: model, resuming: resumeHere != nil) }
                let promptFile = try g.prompts.map { try JSONLFile(url: $0) } ?? trainFile
                let stream = TrainingStream(file: promptFile, rows: g.prompts == nil ? trainRows : Array(0..<promptFile.count),
                                            format: recipe.data.format, tokenizer: tokenizer, maxLength: 1 << 20, seed: recipe.seed &+ UInt64(index))
                let trainer = GRPOTrainer(policy: model, tokenizer: tokenizer, prompts: stream, rewards: try rewards(g.rewards),
                                          config: g.config, seed: recipe.seed &+ UInt64(index))
                if let r = resumeHere {
                    let reference = r.state.hasReference ? try Transformer.load(from: checkpoint!.appendingPathComponent("reference")) : nil
                    try trainer.restore(step: r.state.step, optimizerState: r.optimizer, dataPosition: r.state.dataPosition, reference: reference)
                }
                trainer.evaluate = evaluate
                trainer.checkpoint = { t in try save(t.step, t.prompts.position, t.optimizer, t.reference) }
                try trainer.train(onEvent: log.handle)
                lastStep = trainer.step
            }
            if let r = resumeHere { progress.note("resumed \(label) at step \(r.state.step) from \(checkpoint!.lastPathComponent)") }
            trainSeconds += progress.elapsed - log.start
            trainTokens += log.tokens
            // A stage without eval_every is evaluated once at its end.
            if log.lastEvaluation == nil { log.evaluated(evaluator.evaluate(model).metrics, step: lastStep) }
            after = log.lastEvaluation!
            if let start = controlStart {
                controls += try runControl(stage: index, grpoSteps: lastStep, start: start, before: atStart, grpo: after, store: store,
                                               runID: runID, trainFile: trainFile, trainRows: trainRows, tokenizer: tokenizer, evaluator: evaluator)
            }
            try store.endStage(run: runID, index: index)
        }
        let final = recipe.outputDir.appendingPathComponent("final")
        try model.save(to: final)
        try tokenizer.save(to: final)
        report(before: before, after: after, trainSeconds: trainSeconds, trainTokens: trainTokens, controls: controls, final: final)
    }

    /// The model a grpo stage with `sft_control` starts from, kept for the control: saved to
    /// `output_dir/control-start-<stage>` when the stage begins, read back when it is resumed.
    func controlStartModel(stage index: Int, model: Transformer, resuming: Bool) throws -> Transformer {
        let dir = recipe.outputDir.appendingPathComponent("control-start-\(index)")
        if resuming {
            guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("config.json").path) else {
                throw RunError("stage \(index) has sft_control but \(dir.path), the model it started from, is missing: the control cannot be run")
            }
            return try Transformer.load(from: dir)
        }
        try model.save(to: dir)
        return model.clone()
    }

    /// The SFT control of a grpo stage: the model the stage started from, trained with the nearest
    /// earlier sft stage's settings for as many steps as fit in the GRPO steps' wall time
    ///   steps = Σ GRPO step times / mean step time of that sft stage   (both from run.sqlite)
    /// with its schedule restarted over those steps, then evaluated. The run's model stays GRPO's.
    /// Returns the report's lines.
    func runControl(stage index: Int, grpoSteps: Int, start: Transformer, before: [String: Double], grpo: [String: Double],
                    store: RunStore, runID: Int64, trainFile: JSONLFile, trainRows: [Int], tokenizer: Tokenizer,
                    evaluator: Evaluator) throws -> [String] {
        let source = Recipe.controlSource(before: index, in: recipe.stages)!
        let grpoSeconds = try store.stageMetric(run: runID, stage: "\(index):grpo", name: "time/step").map(\.value).reduce(0, +)
        let sftTimes = try store.stageMetric(run: runID, stage: "\(source.index):sft", name: "train/step_time").map(\.value)
        guard !sftTimes.isEmpty else { throw RunError("sft_control of stage \(index): run.sqlite holds no step times of stage \(source.index) (sft)") }
        let sftStep = sftTimes.reduce(0, +) / Double(sftTimes.count)
        var config = source.config
        config.steps = max(1, Int((grpoSeconds / sftStep).rounded()))
        config.schedule = config.schedule.stretched(from: source.config.steps, to: config.steps)
        config.evalEvery = 0
        config.checkpointEvery = 0
        let label = "\(index):sft_control"
        progress.note("sft_control: \(config.steps) SFT steps from the model stage \(index) started from (GRPO took \(Progress.clock(grpoSeconds)), SFT \(String(format: "%.2f", sftStep)) s a step)")
        let log = StageLog(label: label, kind: "sft_control", store: store, runID: runID, progress: progress, firstStep: 0)
        let stream = TrainingStream(file: trainFile, rows: trainRows, format: recipe.data.format, tokenizer: tokenizer,
                                    maxLength: config.maxLength, seed: recipe.seed &+ UInt64(index))
        try SFTTrainer(model: start, data: stream, config: config).train(onEvent: log.handle)
        let controlSeconds = progress.elapsed - log.start
        log.evaluated(evaluator.evaluate(start).metrics, step: config.steps)
        let control = log.lastEvaluation!
        func row(_ label: String, _ m: [String: Double]) -> String {
            "  " + label.padding(toLength: 34, withPad: " ", startingAt: 0) + (m["eval/accuracy"].map { String(format: "%5.1f%%", 100 * $0) } ?? "    –")
        }
        return ["control (stage \(index)): the same time of further SFT instead of GRPO",
                row("start of the stage:", before),
                row("+ \(grpoSteps) GRPO steps (\(Progress.clock(grpoSeconds))):", grpo),
                row("+ \(config.steps) SFT steps (\(Progress.clock(controlSeconds))):", control)]
    }

    /// The model and tokenizer: from the checkpoint being resumed, a Hugging Face folder, or made new.
    func buildModel(from checkpoint: URL?, trainFile: JSONLFile) throws -> (Transformer, Tokenizer) {
        if let checkpoint { return (try Transformer.load(from: checkpoint), try Tokenizer(directory: checkpoint)) }
        switch recipe.model {
        case .pretrained(let dir):
            return (try Transformer.load(from: dir), try Tokenizer(directory: dir))
        case .scratch(var config, let source):
            let tokenizer: Tokenizer
            switch source {
            case .load(let dir): tokenizer = try Tokenizer(directory: dir)
            case .train(let vocabSize):
                // The training texts of up to 5,000 rows are plenty for a task vocabulary.
                let blank = try Tokenizer.train(corpus: [], vocabSize: 256 + 3, specialTokens: RecipeRunner.specialTokens)
                var corpus: [String] = []
                for i in 0..<min(trainFile.count, 5000) {
                    let ex = try trainFile.example(i, format: recipe.data.format, tokenizer: blank)
                    corpus.append(ex.prompt + ex.completion)
                }
                tokenizer = try Tokenizer.train(corpus: corpus, vocabSize: vocabSize, specialTokens: RecipeRunner.specialTokens)
            }
            config.vocabSize = tokenizer.vocabSize
            config.eosTokenIds = tokenizer.eosTokenId.map { [$0] } ?? []
            config.padTokenId = tokenizer.padTokenId
            return (Transformer(config: config, seed: recipe.seed), tokenizer)
        }
    }

    static let specialTokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

    /// Training rows and the held-out evaluator (a separate file, or a seeded split).
    func prepareData(trainFile: JSONLFile, tokenizer: Tokenizer) throws -> ([Int], Evaluator) {
        var trainRows = Array(0..<trainFile.count)
        let evalFile: JSONLFile, evalRows: [Int]
        if let url = recipe.data.eval {
            evalFile = try JSONLFile(url: url)
            evalRows = Array(0..<min(evalFile.count, recipe.eval.samples))
        } else {
            let split = DatasetSplit.trainEval(trainFile.count, evalSize: recipe.data.evalSize, seed: recipe.seed)
            trainRows = split.train
            evalFile = trainFile
            evalRows = Array(split.eval.prefix(recipe.eval.samples))
        }
        let examples = try evalRows.map { try evalFile.example($0, format: recipe.data.format, tokenizer: tokenizer) }
        let task = recipe.data.task
        let maxLength = recipe.stages.map { stage -> Int in
            switch stage {
            case .sft(let c): return c.maxLength
            case .grpo(let g): return 512 + g.config.sampling.maxNewTokens
            }
        }.max() ?? 256
        var evaluator = Evaluator(examples: examples, tokenizer: tokenizer, maxNewTokens: recipe.eval.maxNewTokens, maxLength: maxLength,
                                  isCorrect: task.map { t in { completion, ex in t.isCorrect(completion, row: ex.row) } })
        evaluator.passK = recipe.eval.passK
        return (trainRows, evaluator)
    }

    /// The rewards of a grpo stage, built from the recipe.
    func rewards(_ specs: [Recipe.RewardSpec]) throws -> WeightedRewards {
        WeightedRewards(try specs.map { spec -> (reward: Reward, weight: Double) in
            switch spec {
            case .task(let kind, let w):
                guard let task = kind ?? recipe.data.task else {
                    throw RunError("\(recipe.file): a 'task' reward needs data.task or its own 'checker'")
                }
                return (TaskReward(task: task), w)
            case .exactAnswer(let extraction, let field, let tolerance, let w):
                return (ExactAnswerReward(extraction: extraction, field: field, tolerance: tolerance), w)
            case .regex(let name, let pattern, let w):
                return (try FormatReward(name: name, pattern: pattern), w)
            case .length(let shape, let w):
                return (LengthReward(shape: shape), w)
            case .repetition(let n, let maxPenalty, let w):
                return (RepetitionReward(n: n, maxPenalty: maxPenalty), w)
            case .external(let name, let command, let timeout, let fallback, let w):
                var reward = ExternalProgramReward(name: name, command: command, timeout: timeout, fallback: fallback)
                reward.onWarning = { [progress] in progress.note("warning: \($0)") }
                return (reward, w)
            case .rewardModel(let name, let path, let w):
                return (try RewardModelScorer(name: name, directory: path), w)
            }
        })
    }

    static func stored(_ r: RolloutRecord) -> StoredRollout {
        StoredRollout(promptId: r.promptId, prompt: r.prompt, row: r.row, group: r.group, sample: r.completion.sample, completion: r.completion.text,
                      completionIds: r.completion.ids, finishReason: r.completion.finishReason.rawValue, reward: r.reward,
                      rewards: r.rewards.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, advantage: r.advantage,
                      groupMean: r.groupMean, groupStd: r.groupStd, logprobSum: r.completion.logprobSum)
    }

    /// The progress line's fields for SFT or GRPO metrics.
    static func progressFields(_ m: [String: Double]) -> [String] {
        if let loss = m["train/loss"] {
            return [String(format: "loss %.4f", loss), String(format: "lr %.2e", m["train/learning_rate"] ?? 0),
                    String(format: "%.0f tok/s", m["train/tokens_per_second"] ?? 0)]
        }
        return [String(format: "reward %.3f±%.3f", m["reward"] ?? .nan, m["reward_std"] ?? .nan),
                String(format: "kl %.4f", m["kl"] ?? 0),
                String(format: "clip %.2f/%.2f", m["clip_ratio/low_mean"] ?? 0, m["clip_ratio/high_mean"] ?? 0),
                String(format: "H %.2f", m["entropy"] ?? 0),
                String(format: "len %.0f [%.0f–%.0f]", m["completions/mean_length"] ?? 0, m["completions/min_length"] ?? 0, m["completions/max_length"] ?? 0),
                String(format: "trunc %.2f", m["completions/clipped_ratio"] ?? 0),
                String(format: "0-std %.2f", m["frac_reward_zero_std"] ?? 0),
                String(format: "gen/score/train %.1f/%.1f/%.1fs", m["time/generate"] ?? 0, m["time/score"] ?? 0, m["time/train"] ?? 0)]
    }

    static func summary(_ m: [String: Double]) -> String {
        var parts: [String] = []
        if let a = m["eval/accuracy"] { parts.append(String(format: "accuracy %.1f%%", 100 * a)) }
        if let (name, p) = m.first(where: { $0.key.hasPrefix("eval/pass@") && !$0.key.dropFirst(10).contains("/") }) {
            parts.append("\(name.dropFirst(5)) " + String(format: "%.1f%%", 100 * p))
        }
        if let l = m["eval/loss"] { parts.append(String(format: "held-out loss %.4f", l)) }
        return parts.joined(separator: ", ")
    }

    func report(before: [String: Double]?, after: [String: Double], trainSeconds: Double, trainTokens: Double, controls: [String], final: URL) {
        var lines = ["", "== \(recipe.name): report =="]
        if let b = before?["eval/accuracy"], let a = after["eval/accuracy"] {
            lines.append(String(format: "held-out accuracy: %.1f%% → %.1f%% (%d problems)", 100 * b, 100 * a, recipe.eval.samples))
        } else if let a = after["eval/accuracy"] {
            lines.append(String(format: "held-out accuracy: %.1f%%", 100 * a))
        }
        for (k, v) in after.sorted(by: { $0.key < $1.key }) where k.hasPrefix("eval/accuracy/") {
            lines.append(String(format: "  %@: %.1f%%", String(k.dropFirst("eval/accuracy/".count)), 100 * v))
        }
        if let l = after["eval/loss"] { lines.append(String(format: "held-out loss: %.4f", l)) }
        lines.append(String(format: "training time: %@ (%.0f tokens/s); whole run %@", Progress.clock(trainSeconds),
                            trainTokens / max(trainSeconds, 1e-9), Progress.clock(progress.elapsed)))
        lines += controls
        lines.append("model: \(final.path)")
        lines.append("metrics: \(recipe.outputDir.appendingPathComponent("run.sqlite").path)")
        progress.note(lines.joined(separator: "\n"))
    }
}

/// Routes one stage's trainer events to the progress bar and run.sqlite, the same for every stage kind.
final class StageLog {
    let label: String, kind: String
    let store: RunStore, runID: Int64, progress: Progress
    /// Wall time (of the run) at which the stage began.
    let start: Double
    var firstStep: Int
    /// Training tokens processed in this stage.
    private(set) var tokens = 0.0
    /// The newest held-out evaluation.
    private(set) var lastEvaluation: [String: Double]?
    private var pendingRollouts: [StoredRollout] = []

    init(label: String, kind: String, store: RunStore, runID: Int64, progress: Progress, firstStep: Int) {
        self.label = label; self.kind = kind; self.store = store; self.runID = runID; self.progress = progress
        self.firstStep = firstStep
        start = progress.elapsed
    }

    func handle(_ event: TrainingEvent) {
        switch event {
        case .rollouts(_, let records):
            pendingRollouts = records.map(RecipeRunner.stored)
        case .step(let step, let total, let metrics):
            do {
                try store.logStep(run: runID, stage: label, step: step, rollouts: pendingRollouts, metrics: metrics, wallTime: progress.elapsed)
            } catch { progress.note("warning: could not write step \(step) to run.sqlite: \(error)") }
            pendingRollouts = []
            let m = Dictionary(metrics, uniquingKeysWith: { a, _ in a })
            tokens += (m["train/tokens_per_second"] ?? m["tokens_per_second"] ?? 0) * (m["train/step_time"] ?? m["time/step"] ?? 0)
            if firstStep >= step { firstStep = step - 1 }
            progress.step(stage: kind, step: step, of: total, stageStart: start, firstStep: firstStep, fields: RecipeRunner.progressFields(m))
        case .evaluation(let step, let metrics):
            evaluated(Dictionary(metrics, uniquingKeysWith: { a, _ in a }), step: step)
        case .warning(let text):
            progress.note("warning: \(text)")
        case .checkpoint:
            break
        }
    }

    /// Records a held-out evaluation of the stage: run.sqlite, the progress output, `lastEvaluation`.
    func evaluated(_ metrics: [String: Double], step: Int) {
        do { try store.log(run: runID, stage: label, step: step, metrics: metrics.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                           wallTime: progress.elapsed) }
        catch { progress.note("warning: could not write the evaluation of step \(step) to run.sqlite: \(error)") }
        lastEvaluation = metrics
        progress.note("[\(kind)] step \(step): " + RecipeRunner.summary(metrics))
    }
}

/// A run that cannot start or go on, with the reason.
struct RunError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
