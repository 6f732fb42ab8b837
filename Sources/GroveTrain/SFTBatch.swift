import GroveData
import GroveTokenizer

/// An example as token ids: the prompt's tokens, then the completion's.
public struct TokenizedExample: Equatable {
    public let tokens: [Int32]
    /// Tokens before this index are prompt: they are read, never learned.
    public let promptLength: Int

    /// Tokenizes prompt and completion separately (so the boundary is exact), appends
    /// `eos` when the completion does not already end with it, and cuts to `maxLength`
    /// from the end (as TRL truncates).
    public init(_ example: Example, tokenizer: Tokenizer, eos: Int32?, maxLength: Int) {
        let prompt = tokenizer.encode(example.prompt).map(Int32.init)
        var completion = tokenizer.encode(example.completion).map(Int32.init)
        if let eos, completion.last != eos { completion.append(eos) }
        tokens = Array((prompt + completion).prefix(maxLength))
        promptLength = min(prompt.count, tokens.count)
    }

    public init(tokens: [Int32], promptLength: Int) {
        self.tokens = tokens
        self.promptLength = promptLength
    }
}

/// A right-padded micro-batch for next-token training on completions only.
///
///   targets[b, t] = tokens[b, t+1]  where position t+1 is a completion token
///                 = −100 (ignored)   for prompt positions, the last position and padding
///
/// Right padding needs no attention mask: causal attention already hides later (pad)
/// positions from every real query.
public struct SFTBatch {
    public let tokens: [Int32]   // (B, T)
    public let targets: [Int32]  // (B, T)
    public let batch: Int
    public let length: Int
    /// Number of positions with a target: the loss's denominator.
    public let targetCount: Int

    public static let ignoreIndex: Int32 = -100

    public init(_ examples: [TokenizedExample], padToken: Int32) {
        batch = examples.count
        length = examples.map(\.tokens.count).max() ?? 0
        var tokens = [Int32](repeating: padToken, count: batch * length)
        var targets = [Int32](repeating: SFTBatch.ignoreIndex, count: batch * length)
        var counted = 0
        for (b, ex) in examples.enumerated() {
            for (t, id) in ex.tokens.enumerated() { tokens[b * length + t] = id }
            for t in 0..<max(ex.tokens.count - 1, 0) where t + 1 >= ex.promptLength {
                targets[b * length + t] = ex.tokens[t + 1]
                counted += 1
            }
        }
        self.tokens = tokens
        self.targets = targets
        self.targetCount = counted
    }
}
