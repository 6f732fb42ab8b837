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
    /// Plain autoregressive sampling for one prompt, recomputing the whole sequence each step
    /// (the batched engine with a KV cache lives in the rollout module).
    /// Stops after `maxNewTokens` or at a token in `stopTokens`, which is included.
    public func generate(prompt: [Int32], maxNewTokens: Int, temperature: Float, seed: UInt64,
                         stopTokens: Set<Int32> = []) -> [Int32] {
        var rng = SeededRandom(seed: seed)
        var tokens = prompt
        var generated: [Int32] = []
        GradMode.withoutGrad {
            for _ in 0..<maxNewTokens {
                let logits = forward(tokens: tokens, batch: 1)
                let last = logits.data + (tokens.count - 1) * config.vocabSize
                let next = sampleToken(last, vocab: config.vocabSize, temperature: temperature, rng: &rng)
                generated.append(next)
                tokens.append(next)
                if stopTokens.contains(next) { break }
            }
        }
        return generated
    }
}
