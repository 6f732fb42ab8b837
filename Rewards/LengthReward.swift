import GroveConfig
import GroveRollout

/// Penalties on completion length (in tokens).
public struct LengthReward: Reward {
    public enum Shape: Equatable {
        /// −(length / maxLength): a plain pressure toward short answers.
        case linear(maxLength: Int)
        /// DAPO's soft overlong punishment: 0 up to maxLength − cache, then falling linearly to −1
        /// at maxLength, and −1 beyond:  r = (maxLength − cache − length) / cache in between.
        case softOverlong(maxLength: Int, cache: Int)
    }

    public let name: String
    public let shape: Shape

    public init(name: String = "length", shape: Shape) {
        self.name = name
        self.shape = shape
    }

    public func score(_ batch: [RewardInput]) throws -> RewardOutput {
        RewardOutput(values: batch.map { item in
            let n = Double(item.completionIds.count)
            switch shape {
            case .linear(let maxLength):
                return -n / Double(maxLength)
            case .softOverlong(let maxLength, let cache):
                let expected = Double(maxLength - cache)
                if n <= expected { return 0 }
                if n <= Double(maxLength) { return (expected - n) / Double(cache) }
                return -1
            }
        })
    }
}

extension LengthReward: RecipeReward {
    public static let recipeKey = "length"
    public static let recipeFields = ["max_length", "cache"]

    /// `- length: {max_length: 64}` (linear), or with `cache: 16` DAPO's soft overlong punishment.
    public static func read(_ f: Fields) throws -> (RewardContext) throws -> Reward {
        let maxLength = try f.reader.int(try f.required("max_length"), f.path("max_length"), min: 1)
        let shape: Shape = f.has("cache") ? .softOverlong(maxLength: maxLength, cache: try f.int("cache", default: 1, min: 1))
                                          : .linear(maxLength: maxLength)
        return { _ in LengthReward(shape: shape) }
    }
}
