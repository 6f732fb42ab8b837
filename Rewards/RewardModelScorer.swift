import Foundation
import GroveConfig
import GroveRollout
import GroveModel
import GroveTensor
import GroveTokenizer

/// A model-based reward: a Hugging Face `*ForSequenceClassification` folder (a Llama/Qwen2
/// body plus `score.weight` [1, C]) scoring prompt + completion. As transformers does, the
/// score is the head applied to the hidden state of the last real token.
public struct RewardModelScorer: Reward {
    public let name: String
    public let model: Transformer
    public let score: Tensor  // (1, C)
    public let tokenizer: Tokenizer

    /// Loads the folder's config, weights (the body and `score.weight`) and tokenizer
    /// (`tokenizerDir`, default: the folder).
    public init(name: String = "reward_model", directory dir: URL, tokenizerDir: URL? = nil) throws {
        var config = try ModelConfig.load(from: dir)
        config.tieWordEmbeddings = true  // a classifier has no LM head; the tied slot stays unused
        var weights = try CheckpointFolder.loadWeights(from: dir)
        guard let score = weights.removeValue(forKey: "score.weight")?.tensor else {
            throw ModelError.missingTensor(file: dir.path, tensor: "score.weight")
        }
        guard score.shape == [1, config.hiddenSize] else {
            throw ModelError.shapeMismatch(file: dir.path, tensor: "score.weight", expected: [1, config.hiddenSize], found: score.shape)
        }
        let model = Transformer(config: config, seed: 0)
        try model.loadWeights(weights, folder: dir.path)
        self.name = name
        self.model = model
        self.score = score
        tokenizer = try Tokenizer(directory: tokenizerDir ?? dir)
    }

    public func score(_ batch: [RewardInput]) throws -> RewardOutput {
        RewardOutput(values: try batch.map { item in
            let ids = tokenizer.encode(item.prompt + item.completion).map(Int32.init)
            do { try model.checkTokens(ids) } catch { throw RewardError(reward: name, message: "\(error): its tokenizer does not fit the model") }
            return ids.isEmpty ? nil : Double(scoreTokens(ids))
        })
    }

    /// The scalar score of one token sequence.
    public func scoreTokens(_ ids: [Int32]) -> Float {
        GradMode.withoutGrad {
            let h = model.hiddenStates(tokens: ids, batch: 1)
            let C = model.config.hiddenSize, last = h.data + (ids.count - 1) * C
            var s: Float = 0
            for c in 0..<C { s += last[c] * score.data[c] }
            return s
        }
    }
}

extension RewardModelScorer: RecipeReward {
    public static let recipeKey = "reward_model"
    public static let recipeFields = ["name", "path"]

    /// `- reward_model: {path: models/rm}`: the folder is checked now, loaded when the run starts.
    public static func read(_ f: Fields) throws -> (RewardContext) throws -> Reward {
        let path = try f.reader.existingPath(try f.required("path"), f.path("path"), directory: true)
        let name = try f.string("name") ?? "reward_model"
        return { _ in try RewardModelScorer(name: name, directory: path) }
    }
}
