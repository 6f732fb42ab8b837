import Foundation
import GroveData
import GroveModel
import GroveStore
import GroveTensor
import GroveTokenizer
import GroveTrain

/// A recipe run: builds or loads the model, reads the data, runs each stage in order with
/// checkpoints, records everything in `output_dir/run.sqlite`, and returns the report as data.
/// It prints nothing: what happens reaches `observer` as `RunEvent`s.
///
/// Data-parallel (a `communicator` of several ranks): every rank runs this same object on the
/// same recipe, training on its share of each batch; rank 0 alone holds the output folder's
/// lock and writes run.sqlite (the others keep theirs in memory), checkpoints and the final
/// model. A resume reads the checkpoint on every rank, so `output_dir` must be one folder all
/// ranks see.
///
/// ```swift
/// let run = RecipeRun(recipe: recipe, resume: false) { event in print(event) }
/// let report = try run.run()
/// ```
public final class RecipeRun {
    public let recipe: Recipe
    public let resume: Bool
    public let communicator: Communicator
    /// Compare the ranks' weights after every step (`TrainingLoop.checkReplicas`).
    public var checkReplicas = false
    let observer: (RunEvent) -> Void
    let checkpoints: URL
    let started = Date()
    /// The run database, and this run's id in it (set when the run begins).
    public private(set) var store: RunStore!
    public private(set) var runID: Int64 = 0
    /// Step counts and step times of the stages finished so far (carried in checkpoints).
    var timings: [Int: StageTiming] = [:]
    /// The run's tokenizer and data, set once the model is built (stages and checkpoints use them).
    private var tokenizer: Tokenizer!
    private var data: RunData!
    /// What each stage did, in order (a stage before its substages), for the report.
    private var outcomes: [StageOutcome] = []

    public init(recipe: Recipe, resume: Bool, communicator: Communicator = SingleProcess(), observer: @escaping (RunEvent) -> Void) {
        self.recipe = recipe
        self.resume = resume
        self.communicator = communicator
        self.observer = observer
        checkpoints = recipe.outputDir.appendingPathComponent("checkpoints")
    }

    /// Seconds since the run started.
    public var elapsed: Double { Date().timeIntervalSince(started) }

    /// Whether `output_dir` holds a run of this recipe that finished: its last run ended
    /// `finished` and its newest checkpoint (if any) is the last stage's last step, so `--resume`
    /// has nothing to do. (A finished run whose recipe now asks for more steps can be resumed.)
    public var isFinished: Bool {
        let db = recipe.outputDir.appendingPathComponent("run.sqlite")
        guard FileManager.default.fileExists(atPath: db.path), let last = try? RunStore(path: db).runs().last,
              last.status == .finished else { return false }
        guard let latest = TrainingCheckpoint.latest(under: checkpoints) else { return true }
        guard let state = try? TrainingCheckpoint.loadState(from: latest).state else { return false }
        return state.stageIndex == recipe.stages.count - 1 && state.step >= recipe.stages[state.stageIndex].steps
    }

    /// Runs every stage (from the newest checkpoint when resuming) and returns the report.
    public func run() throws -> RunReport {
        let writes = communicator.rank == 0
        if writes { try FileManager.default.createDirectory(at: recipe.outputDir, withIntermediateDirectories: true) }
        let lock = writes ? try OutputLock(folder: recipe.outputDir) : nil
        defer { withExtendedLifetime(lock) {} }
        if TrainingCheckpoint.latest(under: checkpoints) != nil && !resume {
            throw RunError("\(recipe.outputDir.path) already holds checkpoints of an earlier run: pass --resume to continue it, or remove the folder (or change output_dir) to start over")
        }
        let restored = resume ? try newestUsableCheckpoint() : nil
        let start = restored?.directory.lastPathComponent ?? "the start"
        if let (rank, theirs, ours) = communicator.firstDisagreeing(start) {
            throw DataParallelError("rank \(rank) would resume from \(theirs), rank 0 from \(ours): every rank must see the same output_dir (\(recipe.outputDir.path)), e.g. on a shared filesystem")
        }
        for t in restored?.state.finishedStages ?? [] { timings[t.stage] = t }
        store = writes ? try RunStore(path: recipe.outputDir.appendingPathComponent("run.sqlite")) : try RunStore.inMemory()
        // Holding the lock, any run still marked `running` is one whose process died unannounced.
        for id in try store.markStaleRunsKilled() { observer(.warning("run \(id) in run.sqlite had stopped without a word (killed?); marked killed")) }
        runID = try store.beginRun(name: recipe.name, recipePath: recipe.file, recipeText: recipe.text, seed: recipe.seed,
                                   groveVersion: GroveVersion.string, resumedFrom: restored?.state.runID)
        do {
            let report = try execute(from: restored)
            try store.finishRun(runID, status: .finished)
            return report
        } catch {
            try? store.finishRun(runID, status: .failed, error: "\(error)")
            throw error
        }
    }

    /// The newest checkpoint that loads and fits this recipe. A damaged one (a disk error, a
    /// hand edit) is passed over with a warning for the one before it, so one bad folder does
    /// not cost the whole run.
    func newestUsableCheckpoint() throws -> ResumePoint? {
        let all = TrainingCheckpoint.all(under: checkpoints)
        for dir in all.reversed() {
            do {
                let (state, optimizer) = try TrainingCheckpoint.loadState(from: dir)
                guard recipe.stages.indices.contains(state.stageIndex) else {
                    throw TrainingError.badCheckpoint("it is of stage \(state.stageIndex); the recipe has \(recipe.stages.count)")
                }
                let steps = recipe.stages[state.stageIndex].steps
                guard (0...steps).contains(state.step) else {
                    throw TrainingError.badCheckpoint("it is at step \(state.step) of stage \(state.stageIndex), which has \(steps)")
                }
                // (The stage checks the position against its rows when it resumes.)
                guard state.dataPosition.epoch >= 0, state.dataPosition.cursor >= 0 else {
                    throw TrainingError.badCheckpoint("its data position (epoch \(state.dataPosition.epoch), row \(state.dataPosition.cursor)) is negative")
                }
                let model = try loadCheckpointModel(dir), tokenizer = try Tokenizer(directory: dir)
                if state.hasReference { _ = try Transformer.load(from: dir.appendingPathComponent("reference")) }
                return ResumePoint(directory: dir, state: state, optimizer: optimizer, model: model, tokenizer: tokenizer)
            } catch {
                observer(.warning("\(dir.path) is not usable (\(error)); trying the checkpoint before it"))
            }
        }
        if !all.isEmpty { throw RunError("no checkpoint under \(checkpoints.path) can be resumed (see the warnings above)") }
        return nil
    }

    /// A checkpoint's model; with `model.lora`, the recipe's base with the checkpoint's adapter,
    /// which must have the recipe's settings.
    func loadCheckpointModel(_ dir: URL) throws -> Transformer {
        guard let lora = recipe.lora, case .pretrained(let base) = recipe.model else { return try Transformer.load(from: dir) }
        guard AdapterFolder.isAdapter(dir) else { throw TrainingError.badCheckpoint("it holds no adapter, and the recipe trains one (model.lora)") }
        let model = try Transformer.load(adapter: dir, base: base)
        guard model.adapter == lora else { throw TrainingError.badCheckpoint("its adapter's settings are not model.lora's") }
        model.dropoutSeed = recipe.seed
        return model
    }

    /// Records the run as interrupted (a signal): its checkpoints stay, `--resume` continues it.
    public func markInterrupted(_ reason: String) {
        if let store { try? store.finishRun(runID, status: .interrupted, error: reason) }
    }

    func execute(from restored: ResumePoint?) throws -> RunReport {
        let blas = BLAS.shared
        let ranks = communicator.size > 1 ? " · \(communicator.size) ranks" : ""
        observer(.note("Grove \(GroveVersion.string) · \(recipe.name) · seed \(recipe.seed) · BLAS \(blas.coreName), \(blas.threads) threads\(ranks)"))
        try recipe.checkRows(tokenizer: try recipe.rowTokenizer())
        let trainFile = try JSONLFile(url: recipe.data.train)
        let (model, tokenizer) = try restored.map { ($0.model, $0.tokenizer) } ?? recipe.buildModel(trainFile: trainFile)
        self.tokenizer = tokenizer
        observer(.note("model: \(model.config.modelType.rawValue), \(model.parameterCount.formatted()) parameters, vocabulary \(tokenizer.vocabSize)"))
        if let lora = model.adapter {
            observer(.note("LoRA: r \(lora.r), alpha \(lora.alpha), on \(lora.targetModules.joined(separator: ", ")): \(model.parameters.reduce(0) { $0 + $1.count }.formatted()) trainable parameters"))
        }
        let data = try RunData(recipe: recipe, trainFile: trainFile, tokenizer: tokenizer, communicator: communicator)
        observer(.note("data: \(data.trainRows.count) training rows, \(data.evaluator.examples.count) held-out"))

        var before: EvalMetrics?
        if restored == nil {
            let m = data.evaluator.evaluate(model).metrics
            try store.log(run: runID, stage: "0:\(recipe.stages[0].kind)", step: 0, metrics: m.named, wallTime: elapsed)
            observer(.note("before training: " + m.summary))
            before = m
        }
        var startEvaluation = before
        let firstStage = restored?.state.stageIndex ?? 0
        self.data = data
        for (index, stage) in recipe.stages.enumerated() where index >= firstStage {
            let resumeHere = restored.flatMap { $0.state.stageIndex == index ? $0 : nil }
            let outcome = try runStage(stage, index: index, label: "\(index):\(stage.kind)", model: model, resume: resumeHere,
                                       startEvaluation: startEvaluation)
            if let r = resumeHere { observer(.note("resumed \(outcome.label) at step \(r.state.step) from \(r.directory.lastPathComponent)")) }
            startEvaluation = outcome.end
        }
        let final = recipe.outputDir.appendingPathComponent("final")
        if communicator.rank == 0 {
            try model.save(to: final)
            try tokenizer.save(to: final)
        }
        return RunReport(name: recipe.name, heldOut: data.evaluator.examples.count, before: before, stages: outcomes,
                         wallSeconds: elapsed, finalModel: final, database: recipe.outputDir.appendingPathComponent("run.sqlite"))
    }

    /// Runs one stage under `label`, evaluates it at its end when it has not, and records its outcome.
    func runStage(_ stage: Stage, index: Int, label: String, model: Transformer, resume: ResumePoint?,
                  startEvaluation: EvalMetrics?) throws -> StageOutcome {
        try store.beginStage(run: runID, index: index, label: label, kind: stage.kind)
        let log = StageLog(label: label, kind: stage.kind, store: store, runID: runID, firstStep: resume?.state.step ?? 0,
                           startEvaluation: startEvaluation,
                           clock: { [unowned self] in elapsed }, observer: observer)
        let context = StageContext(recipe: recipe, index: index, label: label, model: model, tokenizer: tokenizer, data: data,
                                   resume: resume, log: log, run: self)
        let stageStart = elapsed, outcomesBefore = outcomes.count
        try stage.run(context)
        // A substage (the SFT control) reports its own time.
        let seconds = elapsed - stageStart - outcomes[outcomesBefore...].reduce(0) { $0 + $1.seconds }
        try log.evaluateAtEndIfNeeded(data.evaluator, model: model, step: log.lastStep)
        try store.endStage(run: runID, label: label)
        let outcome = StageOutcome(label: label, kind: stage.kind, steps: log.lastStep, seconds: seconds, tokens: log.tokens,
                                   start: startEvaluation, end: log.lastEvaluation!)
        outcomes.insert(outcome, at: outcomesBefore)  // a stage before its substages
        return outcome
    }

    /// Writes a checkpoint after `step` of stage `stage`.
    func saveCheckpoint(stage: Int, step: Int, stepSeconds: Double, position: TrainingStream.Position, optimizer: AdamW,
                        model: Transformer, reference: Transformer?) throws {
        guard communicator.rank == 0 else { return }
        let state = TrainerState(stageIndex: stage, step: step, dataPosition: position, seed: recipe.seed, runID: runID,
                                 stepSeconds: stepSeconds, finishedStages: timings.values.filter { $0.stage < stage }.sorted { $0.stage < $1.stage })
        let dir = try TrainingCheckpoint.save(model: model, tokenizer: tokenizer, optimizer: optimizer, state: state,
                                              reference: reference, under: checkpoints)
        observer(.note("checkpoint: \(dir.path)"))
        try TrainingCheckpoint.prune(under: checkpoints, keep: recipe.keepCheckpoints)
    }
}

extension Communicator {
    /// Refuses a data-parallel start whose ranks run different recipes (file and overrides) or
    /// Grove versions, naming the first rank that differs from rank 0.
    public func requireSameRun(recipeText: String, overrides: [String]) throws {
        if let (rank, theirs, ours) = firstDisagreeing(GroveVersion.string) {
            throw DataParallelError("rank \(rank) runs Grove \(theirs), rank 0 Grove \(ours): every rank must run the same Grove build")
        }
        var hash = FNV1a()
        for byte in ([recipeText] + overrides).joined(separator: "\u{0}").utf8 { hash.add(byte) }
        if let (rank, theirs, ours) = firstDisagreeing(hash.hex) {
            throw DataParallelError("rank \(rank) runs another recipe than rank 0 (recipe text and --set overrides hash to \(theirs), rank 0's to \(ours)): every rank must run the same recipe")
        }
    }
}

/// A run that cannot start or go on, with the reason.
public struct RunError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Grove's release version, recorded in every run database.
public enum GroveVersion {
    public static let string = "0.1.0"
}

/// Durations as people read them: `4:12`, `1:02:03`.
public enum RunClock {
    public static func format(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
