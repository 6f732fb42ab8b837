import GroveConfig
import GroveRollout
import GroveTasks

/// 1 when a built-in task's checker accepts the completion (arithmetic, countdown, gsm8k, last_number), else 0.
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

extension TaskReward: RecipeReward {
    public static let recipeKey = "task"
    public static let recipeFields = ["checker"]

    /// `- task: {checker: arithmetic}`; without `checker`, the recipe's `data.task`.
    public static func read(_ f: Fields) throws -> (RewardContext) throws -> Reward {
        let checker = try f["checker"].map { try f.reader.choice($0, f.path("checker"), as: TaskKind.self) }
        return { context in
            guard let task = checker ?? context.task else {
                throw RecipeError(file: f.reader.file, line: f.line, path: f.path("checker"),
                                  message: "a 'task' reward needs data.task or its own 'checker' (\(TaskKind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return TaskReward(task: task)
        }
    }
}
