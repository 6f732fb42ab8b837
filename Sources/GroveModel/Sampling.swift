import Foundation
import GroveTensor

/// Picks the next token from one row of logits: greedy at temperature 0, otherwise a draw
/// from softmax(logits / temperature) with the given generator.
public func sampleToken(_ logits: UnsafePointer<Float>, vocab V: Int, temperature: Float,
                        rng: inout SeededRandom) -> Int32 {
    var best = 0
    for v in 1..<V where logits[v] > logits[best] { best = v }
    guard temperature > 0 else { return Int32(best) }
    // p_v ∝ exp((x_v − x_max) / τ); draw u·Σ and walk the cumulative sum.
    var total: Double = 0
    for v in 0..<V { total += Double(expf((logits[v] - logits[best]) / temperature)) }
    let target = Double(rng.uniform()) * total
    var running: Double = 0
    for v in 0..<V {
        running += Double(expf((logits[v] - logits[best]) / temperature))
        if running > target { return Int32(v) }
    }
    return Int32(best)
}

extension Transformer {
    /// Samples continuations of several prompts at once with a KV cache: the prompts are
    /// left-padded into one prefill, then every step decodes one token for all rows with
    /// one batched forward. Row i draws from its own generator `SeededRandom(seed:, streams: [i])`,
    /// so a row's output does not depend on the others. A row stops at `maxNewTokens` or
    /// after a token in `stopTokens` (included in its output).
    public func generate(prompts: [[Int32]], maxNewTokens: Int, temperature: Float, seed: UInt64,
                         stopTokens: Set<Int32> = []) -> [[Int32]] {
        let B = prompts.count, P = prompts.map(\.count).max() ?? 0, V = config.vocabSize
        guard B > 0, P > 0, maxNewTokens > 0 else { return prompts.map { _ in [] } }
        var rngs = (0..<B).map { SeededRandom(seed: seed, streams: [UInt64($0)]) }
        var outputs = [[Int32]](repeating: [], count: B)
        var done = [Bool](repeating: false, count: B)
        let pad = Int32(config.padTokenId ?? 0)
        var tokens = [Int32](repeating: pad, count: B * P), mask = [Bool](repeating: false, count: B * P)
        for (b, prompt) in prompts.enumerated() {
            for (t, id) in prompt.enumerated() {
                tokens[b * P + P - prompt.count + t] = id
                mask[b * P + P - prompt.count + t] = true
            }
        }
        GradMode.withoutGrad {
            let cache = KVCache(config: config, batch: B, capacity: P + maxNewTokens)
            var logits = forward(tokens: tokens, batch: B, attentionMask: mask, cache: cache)
            var rowLength = P  // logits rows per batch row in the last forward
            for _ in 0..<maxNewTokens {
                var next = [Int32](repeating: pad, count: B)
                for b in 0..<B where !done[b] {
                    let row = logits.data + ((b + 1) * rowLength - 1) * V
                    next[b] = sampleToken(row, vocab: V, temperature: temperature, rng: &rngs[b])
                    outputs[b].append(next[b])
                    if stopTokens.contains(next[b]) || outputs[b].count == maxNewTokens { done[b] = true }
                }
                if done.allSatisfy({ $0 }) { break }
                logits = forward(tokens: next, batch: B, attentionMask: done.map { !$0 }, cache: cache)
                rowLength = 1
            }
        }
        return outputs
    }
}
