import Foundation
import GroveData
import GroveModel
import GroveTokenizer
import GroveTrain

/// The data every stage shares: the training file and its rows, and the held-out evaluator.
public struct RunData {
    public let trainFile: JSONLFile
    /// The training file's rows that train (the rest, with no `data.eval`, are held out).
    public let trainRows: [Int]
    public let evaluator: Evaluator

    /// Training rows and the held-out evaluator (a separate file, or a seeded split).
    init(recipe: Recipe, trainFile: JSONLFile, tokenizer: Tokenizer, communicator: Communicator) throws {
        self.trainFile = trainFile
        var trainRows = Array(0..<trainFile.count)
        let evalFile: JSONLFile, evalRows: [Int]
        if let url = recipe.data.eval {
            evalFile = try JSONLFile(url: url)
            evalRows = Array(0..<min(evalFile.count, recipe.eval.samples))
        } else {
            let split = DatasetSplit.trainEval(trainFile.count, evalSize: recipe.data.evalSize, seed: recipe.seed)
            trainRows = split.train
            evalFile = trainFile
            evalRows = Array(split.eval.prefix(recipe.eval.samples))
        }
        self.trainRows = trainRows
        // Prompt-only rows (a GRPO recipe's data) are evaluated by their checker; their held-out loss has no targets.
        let examples = try evalRows.map { try evalFile.example($0, format: recipe.data.format, tokenizer: tokenizer, completionRequired: false) }
        let task = recipe.data.task
        var evaluator = Evaluator(examples: examples, tokenizer: tokenizer, maxNewTokens: recipe.eval.maxNewTokens,
                                  maxLength: recipe.stages.map(\.maxSequenceLength).max() ?? 256,
                                  isCorrect: task.map { t in { completion, ex in t.isCorrect(completion, row: ex.row) } })
        evaluator.passK = recipe.eval.passK
        evaluator.communicator = communicator
        self.evaluator = evaluator
    }
}

extension Recipe {
    /// Special tokens of a tokenizer trained for a new model (ChatML's, as Qwen2's).
    static let specialTokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

    /// The model and tokenizer a run starts from: a Hugging Face folder, or made new.
    func buildModel(trainFile: JSONLFile) throws -> (Transformer, Tokenizer) {
        switch model {
        case .pretrained(let dir):
            let model = try Transformer.load(from: dir)
            if let lora { model.addAdapter(lora, seed: seed) }
            return (model, try Tokenizer.load(model: dir))
        case .scratch(var config, let source):
            let tokenizer: Tokenizer
            switch source {
            case .load(let dir): tokenizer = try Tokenizer(directory: dir)
            case .train(let vocabSize):
                // The training texts of up to 5,000 rows are plenty for a task vocabulary.
                let blank = try Tokenizer.train(corpus: [], vocabSize: 256 + 3, specialTokens: Recipe.specialTokens)
                var corpus: [String] = []
                for i in 0..<min(trainFile.count, 5000) {
                    let ex = try trainFile.example(i, format: data.format, tokenizer: blank, completionRequired: false)
                    corpus.append(ex.prompt + ex.completion)
                }
                tokenizer = try Tokenizer.train(corpus: corpus, vocabSize: vocabSize, specialTokens: Recipe.specialTokens)
            }
            config.vocabSize = tokenizer.vocabSize
            config.eosTokenIds = tokenizer.eosTokenId.map { [$0] } ?? []
            config.padTokenId = tokenizer.padTokenId
            return (Transformer(config: config, seed: seed), tokenizer)
        }
    }
}
