import Foundation
import GroveData
import GroveTasks
import GroveTokenizer

/// A file of rows a stage reads and what each row must hold.
public struct DataNeed {
    /// The file, or nil for the training rows of `data.train`.
    public var file: URL?
    /// Every row needs a completion (SFT); without, a prompt suffices (GRPO).
    public var completion: Bool
    /// Every row needs what `data.task`'s checker reads (GRPO prompts scored by it).
    public var checkerFields: Bool

    public init(file: URL?, completion: Bool, checkerFields: Bool) {
        self.file = file; self.completion = completion; self.checkerFields = checkerFields
    }
}

extension Recipe {
    /// Reads every row the run will read, the held-out ones too, before any training, so a bad
    /// row at line 1,000 stops the run (or `grove validate`) at once, naming its file and line,
    /// not at the step that meets it.
    public func checkRows(tokenizer: Tokenizer) throws {
        var needs = stages.flatMap { $0.dataNeeds(self) }
        if let eval = data.eval { needs.append(DataNeed(file: eval, completion: false, checkerFields: true)) }
        var checked = Set<String>()
        for need in needs {
            let url = need.file ?? data.train
            let key = "\(url.path) \(need.completion) \(need.checkerFields)"
            guard checked.insert(key).inserted else { continue }
            let file = try JSONLFile(url: url)
            for i in 0..<file.count {
                let example = try file.example(i, format: data.format, tokenizer: tokenizer, completionRequired: need.completion)
                if need.checkerFields, let task = data.task, let missing = task.missingReference(in: example.row) {
                    throw RunError("\(url.path):\(file.lineNumber(of: i)): the '\(task.rawValue)' checker (data.task) needs \(missing)")
                }
            }
        }
    }

    /// A tokenizer good enough to read the rows (chat templates) before the run's own exists:
    /// the model's, or, for a tokenizer still to be trained, a byte-level one with its special tokens.
    public func rowTokenizer() throws -> Tokenizer {
        switch model {
        case .pretrained(let dir), .scratch(_, .load(let dir)): return try Tokenizer.load(model: dir)
        case .scratch(_, .train): return try Tokenizer.train(corpus: [], vocabSize: 256 + 3, specialTokens: Recipe.specialTokens)
        }
    }
}
