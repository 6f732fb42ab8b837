import GroveConfig
import GroveTensor

/// The learning-rate schedule keys every training stage takes.
enum ScheduleKeys {
    static let all = ["schedule", "warmup_steps", "min_lr_ratio", "step_size", "gamma"]

    enum Kind: String, CaseIterable { case constant, linear, warmup_cosine, warmup_step }

    /// The schedule of a stage: `schedule` and the keys of that schedule. A key the chosen
    /// schedule does not read (`warmup_steps` with `constant`, `gamma` with `warmup_cosine`)
    /// is an error rather than silently ignored.
    static func read(_ s: Fields, steps: Int) throws -> LearningRateSchedule {
        let r = s.reader
        let kind = try s["schedule"].map { try r.choice($0, s.path("schedule"), as: Kind.self) } ?? .constant
        let reads: [String]
        switch kind {
        case .constant: reads = []
        case .linear: reads = ["warmup_steps"]
        case .warmup_cosine: reads = ["warmup_steps", "min_lr_ratio"]
        case .warmup_step: reads = ["warmup_steps", "step_size", "gamma"]
        }
        for key in all.dropFirst() where s.has(key) && !reads.contains(key) {
            throw r.error(s[key]!, s.path(key), "not used by schedule '\(kind.rawValue)'"
                          + (kind == .constant ? "; set schedule: linear, warmup_cosine or warmup_step" : ""))
        }
        let warmup = try s.int("warmup_steps", default: 0, min: 0)
        switch kind {
        case .constant: return .constant
        case .linear: return .warmupLinear(warmupSteps: warmup, totalSteps: steps)
        case .warmup_cosine:
            return .warmupCosine(warmupSteps: warmup, totalSteps: steps, minRatio: Float(try s.double("min_lr_ratio", default: 0, range: 0...1)))
        case .warmup_step:
            return .warmupStep(warmupSteps: warmup, stepSize: try s.int("step_size", default: max(steps / 3, 1), min: 1),
                               gamma: Float(try s.double("gamma", default: 0.1, range: 0...1)))
        }
    }
}
