import Foundation
import GroveConfig
import GroveData
import GroveModel
import GroveTensor
import GroveTokenizer
import GroveTrain

/// One stage of a run: it trains the run's model (SFT, GRPO) or a copy of it (the SFT control),
/// reporting its steps and evaluations through the context's `StageLog`.
public protocol Stage {
    /// The stage's kind, as run.sqlite and the progress output name it.
    var kind: String { get }
    /// The steps the stage runs.
    var steps: Int { get }
    /// The longest sequence the stage trains on, in tokens: the held-out loss must fit it too.
    var maxSequenceLength: Int { get }
    /// The rows the stage will read, checked before any training (`DataCheck`).
    func dataNeeds(_ recipe: Recipe) -> [DataNeed]
    /// Runs the stage to its last step, resuming where `context.resume` says.
    func run(_ context: StageContext) throws
}

/// A stage a recipe can name in its `stages:` list. A new kind is one file with a type
/// conforming to this, plus one line in `StageRegistry.all`.
public protocol RecipeStage: Stage {
    /// The key that names the kind in a recipe: `- sft: {…}`.
    static var recipeKey: String { get }
    /// Reads and checks the stage's settings.
    static func read(_ value: RecipeValue, path: String, _ r: RecipeReader) throws -> Self
    /// Checks the stage against the whole list (`value` is its recipe entry, for the error's line).
    func check(index: Int, in stages: [any RecipeStage], value: RecipeValue, _ r: RecipeReader) throws
}

extension RecipeStage {
    public var kind: String { Self.recipeKey }
    public func check(index: Int, in stages: [any RecipeStage], value: RecipeValue, _ r: RecipeReader) throws {}
}

/// The stage kinds a recipe can name, one line each.
public enum StageRegistry {
    public static let all: [any RecipeStage.Type] = [
        SFTStage.self,
        GRPOStage.self,
    ]

    /// Reads one `stages:` entry, `{KIND: {settings…}}`.
    static func read(_ value: RecipeValue, path: String, _ r: RecipeReader) throws -> any RecipeStage {
        let kinds = all.map { $0.recipeKey }
        guard case .mapping(let entries, _) = value, entries.count == 1 else {
            throw r.error(value, path, "a stage is one of \(kinds.joined(separator: ", ")) with its settings, e.g. '- sft: {steps: 100}'")
        }
        let (key, body) = entries[0]
        guard let kind = all.first(where: { $0.recipeKey == key }) else {
            let hint = r.closest(to: key, in: kinds).map { " (did you mean '\($0)'?)" } ?? ""
            throw r.error(body, "\(path).\(key)", "unknown stage kind\(hint); known: \(kinds.joined(separator: ", "))")
        }
        return try kind.read(body, path: "\(path).\(key)", r)
    }
}

/// Where a stage resumes: the checkpoint's state and optimizer moments.
public struct ResumePoint {
    public let directory: URL
    public let state: TrainerState
    public let optimizer: [String: Tensor]
    /// The checkpoint's model and tokenizer, loaded (and so checked) when it was chosen.
    public let model: Transformer
    public let tokenizer: Tokenizer
}

/// What a stage gets from the run: the model, tokenizer and data, its place in the run, where
/// to resume, its log, and how to checkpoint.
public final class StageContext {
    public let recipe: Recipe
    /// The stage's position in the recipe, and its label in run.sqlite (`1:grpo`).
    public let index: Int
    public let label: String
    public let model: Transformer
    public let tokenizer: Tokenizer
    public let data: RunData
    /// Set when the run resumes inside this stage.
    public let resume: ResumePoint?
    public let log: StageLog
    let run: RecipeRun

    init(recipe: Recipe, index: Int, label: String, model: Transformer, tokenizer: Tokenizer, data: RunData,
         resume: ResumePoint?, log: StageLog, run: RecipeRun) {
        self.recipe = recipe; self.index = index; self.label = label; self.model = model; self.tokenizer = tokenizer
        self.data = data; self.resume = resume; self.log = log; self.run = run
    }

    /// The ranks of a data-parallel run (one process: `SingleProcess`).
    public var communicator: Communicator { run.communicator }

    /// The stage's seed: the run's, offset by the stage's position.
    public var seed: UInt64 { recipe.seed &+ UInt64(index) }

    /// A stream over the training rows (or another file's rows, e.g. a grpo stage's prompts).
    public func stream(file: JSONLFile? = nil, maxLength: Int) -> TrainingStream {
        TrainingStream(file: file ?? data.trainFile, rows: file == nil ? data.trainRows : Array(0..<file!.count),
                       format: recipe.data.format, tokenizer: tokenizer, maxLength: maxLength, seed: seed)
    }

    /// Hooks the loop's evaluation and checkpoints to the run: held-out evaluation of the model,
    /// and a checkpoint of the model, optimizer, data position and (GRPO) reference model.
    public func attach(_ loop: TrainingLoop, position: @escaping () -> TrainingStream.Position, reference: @escaping () -> Transformer? = { nil }) {
        loop.evaluate = { [data, model] _ in data.evaluator.evaluate(model).metrics }
        loop.checkReplicas = run.checkReplicas
        loop.checkpoint = { [self] step in
            try run.saveCheckpoint(stage: index, step: step, stepSeconds: loop.stepSeconds, position: position(),
                                   optimizer: loop.optimizer, model: model, reference: reference())
        }
    }

    /// The step time of an earlier stage of this run (over this process and the runs it resumed).
    public func timing(ofStage index: Int) -> StageTiming? { run.timings[index] }

    /// Records this stage's step count and step time for later stages (an SFT control).
    public func finish(steps: Int, stepSeconds: Double) {
        run.timings[index] = StageTiming(stage: index, steps: steps, seconds: stepSeconds)
    }

    /// Runs `stage` on `model` as a stage of its own (`label`, e.g. `1:sft_control`), evaluated at its end.
    public func runSubstage(_ stage: Stage, label: String, model: Transformer) throws -> StageOutcome {
        try run.runStage(stage, index: index, label: label, model: model, resume: nil, startEvaluation: log.startEvaluation)
    }
}
