import Foundation
import GroveModel
import GroveTensor
import GroveTokenizer

/// One sampled completion of a prompt.
public struct Completion: Codable {
    /// Index of its prompt in the batch (its group).
    public let group: Int
    /// Index within the group, 0..<G.
    public let sample: Int
    public let promptIds: [Int32]
    public let ids: [Int32]
    public let text: String
    public let finishReason: FinishReason
    /// Log-probs of the sampled tokens under the sampling policy (see `GeneratedSequence`).
    public let logprobs: [Float]
    public var logprobSum: Double { logprobs.reduce(0) { $0 + Double($1) } }

    /// The same completion as group `group` of a larger batch (a data-parallel rank's share of a step).
    public func inGroup(_ group: Int) -> Completion {
        Completion(group: group, sample: sample, promptIds: promptIds, ids: ids, text: text, finishReason: finishReason, logprobs: logprobs)
    }
}

/// Samples G completions for each of P prompts with one batched, KV-cached generation.
///
/// Each completion draws from `SeededRandom(seed: runSeed, streams: [step, promptId, sample])`,
/// so the same recipe and seed give the same rollouts whatever the batch or thread count.
///
/// ```swift
/// let engine = RolloutEngine(model: policy, tokenizer: tok, options: SamplingOptions(temperature: 1, maxNewTokens: 64))
/// let completions = engine.rollouts(prompts: ["12+34="], promptIds: [7], groupSize: 8, seed: 0, step: 1)
/// ```
public struct RolloutEngine {
    public let model: Transformer
    public let tokenizer: Tokenizer
    public var options: SamplingOptions
    /// Texts that end a completion (cut from its text; its tokens keep what was sampled).
    public var stopStrings: [String]

    public init(model: Transformer, tokenizer: Tokenizer, options: SamplingOptions, stopStrings: [String] = []) {
        self.model = model
        self.tokenizer = tokenizer
        var options = options
        if let eos = tokenizer.eosTokenId { options.stopTokens.insert(Int32(eos)) }
        self.options = options
        self.stopStrings = stopStrings
    }

    public func rollouts(prompts: [String], promptIds: [Int], groupSize G: Int, seed: UInt64, step: Int) -> [Completion] {
        guard !prompts.isEmpty else { return [] }  // a data-parallel rank with no prompt this round
        let encoded = prompts.map { tokenizer.encode($0).map(Int32.init) }
        var batch: [[Int32]] = [], rngs: [SeededRandom] = []
        for (p, ids) in encoded.enumerated() {
            for g in 0..<G {
                batch.append(ids)
                rngs.append(SeededRandom(seed: seed, streams: [UInt64(step), UInt64(promptIds[p]), UInt64(g)]))
            }
        }
        let stops = stopStrings
        // Only the tail can complete a stop string, and a token decodes to at least one byte:
        // a stop string of n bytes lies within the last n tokens, so only those are decoded.
        let window = stops.map(\.utf8.count).max() ?? 0
        let shouldStop: ((Int, [Int32]) -> Bool)? = stops.isEmpty ? nil : { _, tokens in
            let tail = tokenizer.decode(tokens.suffix(window).map(Int.init))
            return stops.contains { tail.contains($0) }
        }
        let generated = model.generate(prompts: batch, options: options, rngs: rngs, shouldStop: shouldStop)
        return generated.enumerated().map { i, seq in
            var text = tokenizer.decode(seq.tokens.map(Int.init), skipSpecialTokens: true)
            for s in stops { if let r = text.range(of: s) { text = String(text[..<r.lowerBound]) } }
            return Completion(group: i / G, sample: i % G, promptIds: batch[i], ids: seq.tokens, text: text,
                              finishReason: seq.finishReason, logprobs: seq.logprobs)
        }
    }
}
