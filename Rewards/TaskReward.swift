import GroveRollout
import GroveTasks

/// 1 when a built-in task's checker accepts the completion (arithmetic, countdown, gsm8k), else 0.
public struct TaskReward: Reward {
    public let name: String
    public let task: TaskKind

    public init(task: TaskKind, name: String? = nil) {
        self.task = task
        self.name = name ?? task.rawValue
    }

    public func score(_ batch: [RewardInput]) throws -> RewardOutput {
        RewardOutput(values: batch.map { task.isCorrect($0.completion, row: $0.row) ? 1 : 0 })
    }
}
