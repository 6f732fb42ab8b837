import GroveConfig
import GroveRollout
import GroveTasks

/// A reward a recipe can name. Each reward reads its own settings from its recipe entry
/// (`- length: {max_length: 64, weight: 0.1}`), so adding one is one file in this folder plus
/// one line in `RewardRegistry.all`; `grove run`, `grove validate` and `grove rescore` all
/// find it by `recipeKey`.
public protocol RecipeReward: Reward {
    /// The name of the reward in a recipe's `rewards:` list and in `grove rescore --reward`.
    static var recipeKey: String { get }
    /// Its own settings (every reward also takes `weight`).
    static var recipeFields: [String] { get }
    /// Reads and checks the settings, and returns how to build the reward once the run is known
    /// (a recipe is checked by `grove validate` before anything is loaded).
    static func read(_ fields: Fields) throws -> (RewardContext) throws -> Reward
}

/// What a reward may need of the run that uses it.
public struct RewardContext {
    /// The recipe's `data.task`, the default checker of a `task` reward.
    public var task: TaskKind?
    /// Where a reward reports a problem that does not stop the run (a fallback value used).
    public var warn: (String) -> Void

    public init(task: TaskKind? = nil, warn: @escaping (String) -> Void = { _ in }) {
        self.task = task; self.warn = warn
    }
}

/// One entry of a recipe's `rewards:` list, read and checked: the reward's key, its weight in
/// the total reward Σ w_f · r_f, and how to build it.
public struct RewardSpec {
    public let key: String
    public let weight: Double
    public let build: (RewardContext) throws -> Reward
}

/// The rewards a recipe can name, one line each.
public enum RewardRegistry {
    public static let all: [any RecipeReward.Type] = [
        TaskReward.self,
        ExactAnswerReward.self,
        FormatReward.self,
        LengthReward.self,
        RepetitionReward.self,
        ExternalProgramReward.self,
        RewardModelScorer.self,
    ]

    public static var keys: [String] { all.map { $0.recipeKey } }

    /// Reads one `rewards:` entry, `{KEY: {settings…, weight: W}}` or a bare `KEY`, at `path`,
    /// finding KEY among `kinds` (the built-ins; a program or test with rewards of its own
    /// passes `RewardRegistry.all + [MyReward.self]`).
    public static func read(_ value: RecipeValue, path: String, _ r: RecipeReader,
                            among kinds: [any RecipeReward.Type] = all) throws -> RewardSpec {
        let keys = kinds.map { $0.recipeKey }
        let key: String, body: RecipeValue
        switch value {
        case .scalar(let s, let line): (key, body) = (s, .mapping([], line: line))
        case .mapping(let entries, _) where entries.count == 1: (key, body) = (entries[0].key, entries[0].value)
        default:
            throw r.error(value, path, "a reward is one of \(keys.joined(separator: ", ")) with its settings, e.g. '- task: {weight: 1}'")
        }
        guard let kind = kinds.first(where: { $0.recipeKey == key }) else {
            let hint = r.closest(to: key, in: keys).map { " (did you mean '\($0)'?)" } ?? ""
            throw r.error(body, "\(path).\(key)", "unknown reward\(hint); known: \(keys.joined(separator: ", "))")
        }
        let fields = try r.mapping(body, "\(path).\(key)", allowed: kind.recipeFields + ["weight"])
        // Bounded so that weighted totals of bounded rewards (RewardOutput.maxMagnitude) stay finite.
        return RewardSpec(key: key, weight: try fields.double("weight", default: 1, range: -1e6...1e6), build: try kind.read(fields))
    }
}
