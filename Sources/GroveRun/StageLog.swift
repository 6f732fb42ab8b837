import Foundation
import GroveModel
import GroveStore
import GroveTrain

/// What a run reports to whoever shows it (the command line's progress bar and log).
public enum RunEvent {
    /// A line of information: the model, the data, a checkpoint written.
    case note(String)
    case step(label: String, kind: String, StepReport)
    case evaluation(label: String, kind: String, step: Int, EvalMetrics)
    case warning(String)
}

/// Routes one stage's training events to run.sqlite and to the run's observer, and keeps what
/// the report needs of the stage: its tokens and its newest evaluation.
public final class StageLog {
    public let label: String, kind: String
    let store: RunStore, runID: Int64
    let clock: () -> Double
    let observer: (RunEvent) -> Void
    /// Wall time (of the run) at which the stage began.
    public let start: Double
    /// Training tokens processed in this stage.
    public private(set) var tokens = 0.0
    /// The evaluation of the model the stage started from, when known.
    public let startEvaluation: EvalMetrics?
    /// The newest held-out evaluation.
    public private(set) var lastEvaluation: EvalMetrics?
    /// The newest step done (the resumed step before any).
    public private(set) var lastStep: Int

    init(label: String, kind: String, store: RunStore, runID: Int64, firstStep: Int, startEvaluation: EvalMetrics?,
         clock: @escaping () -> Double, observer: @escaping (RunEvent) -> Void) {
        self.label = label; self.kind = kind; self.store = store; self.runID = runID; lastStep = firstStep
        self.startEvaluation = startEvaluation; self.clock = clock; self.observer = observer
        start = clock()
    }

    /// Handles one trainer event.
    /// Handles one trainer event. A step that cannot be written to run.sqlite stops the run:
    /// training on without a record would lose every later step's metrics too.
    public func handle(_ event: TrainingEvent) throws {
        switch event {
        case .step(let report):
            do {
                try store.logStep(run: runID, stage: label, step: report.step, rollouts: report.rollouts.map(StageLog.stored),
                                  metrics: report.metrics.named, wallTime: clock())
            } catch { throw RunError("could not write step \(report.step) of \(label) to run.sqlite (\(error)); the run stops after a checkpoint of the step") }
            tokens += report.tokens
            lastStep = report.step
            observer(.step(label: label, kind: kind, report))
        case .evaluation(let step, let metrics):
            try evaluated(metrics, step: step)
        case .warning(let text):
            warn(text)
        }
    }

    /// Records a held-out evaluation of the stage: run.sqlite, the observer, `lastEvaluation`.
    public func evaluated(_ metrics: EvalMetrics, step: Int) throws {
        do { try store.log(run: runID, stage: label, step: step, metrics: metrics.named, wallTime: clock()) }
        catch { throw RunError("could not write the evaluation of step \(step) of \(label) to run.sqlite: \(error)") }
        lastEvaluation = metrics
        observer(.evaluation(label: label, kind: kind, step: step, metrics))
    }

    /// Evaluates the model at the end of a stage that has not evaluated it there (no `eval_every`).
    public func evaluateAtEndIfNeeded(_ evaluator: Evaluator, model: Transformer, step: Int) throws {
        if lastEvaluation == nil { try evaluated(evaluator.evaluate(model).metrics, step: step) }
    }

    /// A problem that does not stop the run.
    public func warn(_ text: String) { observer(.warning(text)) }

    /// A line of information for the run's output.
    public func note(_ text: String) { observer(.note(text)) }

    static func stored(_ r: RolloutRecord) -> StoredRollout {
        StoredRollout(promptId: r.promptId, prompt: r.prompt, row: r.row, group: r.group, sample: r.completion.sample, completion: r.completion.text,
                      completionIds: r.completion.ids, finishReason: r.completion.finishReason.rawValue, reward: r.reward,
                      rewards: r.rewards.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, advantage: r.advantage,
                      groupMean: r.groupMean, groupStd: r.groupStd, logprobSum: r.completion.logprobSum, dropped: r.dropped)
    }
}
