import Foundation
import GroveTrain

/// What a stage did: its steps, time and tokens, and the held-out evaluation of the model it
/// started from and of the model it ended with.
public struct StageOutcome {
    /// `1:grpo`, `1:sft_control`.
    public let label: String
    public let kind: String
    /// The last step done.
    public let steps: Int
    /// Wall time of the stage in this process.
    public let seconds: Double
    public let tokens: Double
    public let start: EvalMetrics?
    public let end: EvalMetrics
}

/// A finished run's report, as data: the command line prints it, `report.html` draws it.
public struct RunReport {
    public let name: String
    /// Held-out problems evaluated.
    public let heldOut: Int
    /// The untrained model's evaluation (nil when the run resumed).
    public let before: EvalMetrics?
    public let stages: [StageOutcome]
    public let wallSeconds: Double
    public let finalModel: URL
    public let database: URL

    /// The run's model at its end: the last stage that trained it (a control trains a copy).
    public var final: EvalMetrics? { stages.last { $0.kind != "sft_control" }?.end }
    /// Time and tokens of the stages that trained the run's model.
    public var trainSeconds: Double { stages.filter { $0.kind != "sft_control" }.reduce(0) { $0 + $1.seconds } }
    public var trainTokens: Double { stages.filter { $0.kind != "sft_control" }.reduce(0) { $0 + $1.tokens } }
}

extension EvalMetrics {
    /// `accuracy 26.3%, pass@8 48.3%, held-out loss 0.0840`.
    public var summary: String {
        var parts: [String] = []
        if let a = accuracy { parts.append(String(format: "accuracy %.1f%%", 100 * a)) }
        if let (name, p) = values.first(where: { $0.key.hasPrefix("eval/pass@") && !$0.key.dropFirst(10).contains("/") }) {
            parts.append("\(name.dropFirst(5)) " + String(format: "%.1f%%", 100 * p))
        }
        if let l = loss { parts.append(String(format: "held-out loss %.4f", l)) }
        return parts.joined(separator: ", ")
    }
}
