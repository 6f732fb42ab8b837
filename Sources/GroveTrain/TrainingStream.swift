import GroveData
import GroveModel
import GroveTensor
import GroveTokenizer

/// An endless, seeded stream of training rows (tokenized examples for SFT, prompts for GRPO): epoch e visits the training
/// rows in the permutation `DatasetSplit.shuffled(n, seed:, stream: e)`, so the stream's
/// whole state is its `Position` (epoch, cursor) and a resumed run reads the same examples.
public final class TrainingStream {
    /// Where the stream stands: the epoch and the index into that epoch's permutation.
    public struct Position: Equatable, Codable {
        public var epoch: Int
        public var cursor: Int
        public init(epoch: Int = 0, cursor: Int = 0) { self.epoch = epoch; self.cursor = cursor }
    }

    public let file: JSONLFile
    public let rows: [Int]
    public let format: DatasetFormat
    public let tokenizer: Tokenizer
    public let maxLength: Int
    public let seed: UInt64
    public let padToken: Int32
    let eos: Int32?
    public private(set) var position = Position()
    private var order: [Int]?  // this epoch's permutation, made on first use
    private var cache: [Int: TokenizedExample] = [:]  // row → tokens; tokenizing is the slow part of a small model's step

    public init(file: JSONLFile, rows: [Int], format: DatasetFormat, tokenizer: Tokenizer, maxLength: Int, seed: UInt64) {
        self.file = file; self.rows = rows; self.format = format; self.tokenizer = tokenizer
        self.maxLength = maxLength; self.seed = seed
        eos = tokenizer.eosTokenId.map(Int32.init)
        padToken = Int32(tokenizer.padTokenId ?? tokenizer.eosTokenId ?? 0)
    }

    /// Fraction of epochs completed, for logs.
    public var epochProgress: Double { Double(position.epoch) + Double(position.cursor) / Double(rows.count) }

    /// Moves to a saved position (a resumed run).
    public func seek(to p: Position) {
        position = p
        order = nil
    }

    /// Moves to a checkpoint's position, which must lie within this stream's rows (a file's
    /// values are checked where they enter: the release build keeps no bounds checks).
    public func resume(at p: Position) throws {
        guard p.epoch >= 0, p.epoch < 1 << 40, (0...rows.count).contains(p.cursor) else {
            throw TrainingError.badCheckpoint("its data position (epoch \(p.epoch), row \(p.cursor)) lies outside the \(rows.count) rows")
        }
        seek(to: p)
    }

    /// The next `n` row indices, wrapping into a new epoch (and a new permutation) as needed.
    public func nextRows(_ n: Int) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(n)
        while out.count < n {
            if position.cursor == rows.count { seek(to: Position(epoch: position.epoch + 1, cursor: 0)) }
            if order == nil { order = DatasetSplit.shuffled(rows.count, seed: seed, stream: UInt64(position.epoch)) }
            out.append(rows[order![position.cursor]])
            position.cursor += 1
        }
        return out
    }

    /// The next `n` examples, tokenized.
    public func next(_ n: Int) throws -> [TokenizedExample] {
        try nextRows(n).map(tokenized)
    }

    /// Row `row` as an example (prompt, completion and the whole row).
    public func example(_ row: Int) throws -> Example {
        try file.example(row, format: format, tokenizer: tokenizer)
    }

    /// Row `row` as a GRPO prompt: as `example`, but a row may lack the completion (prompt-only data).
    public func prompt(_ row: Int) throws -> Example {
        try file.example(row, format: format, tokenizer: tokenizer, completionRequired: false)
    }

    func tokenized(_ row: Int) throws -> TokenizedExample {
        if let t = cache[row] { return t }
        let t = TokenizedExample(try example(row), tokenizer: tokenizer, eos: eos, maxLength: maxLength)
        cache[row] = t
        return t
    }
}
