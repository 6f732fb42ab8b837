import Foundation
import GroveTensor

/// How the next token is drawn from the logits.
///
/// With p = softmax(logits / temperature): min-p keeps tokens with p ≥ minP · max p, top-k the k
/// most likely (and those tied with the k-th), top-p the smallest most-likely set whose mass
/// reaches topP (ties broken by lower id); the draw is from the tokens all three keep,
/// renormalised. Temperature 0 is greedy (the first of tied maxima).
public struct SamplingOptions: Equatable {
    public var temperature: Float
    public var topK: Int?
    public var topP: Float?
    public var minP: Float?
    public var maxNewTokens: Int
    /// Tokens that end a sequence (included in its output).
    public var stopTokens: Set<Int32>

    public init(temperature: Float = 1, topK: Int? = nil, topP: Float? = nil, minP: Float? = nil, maxNewTokens: Int = 64,
                stopTokens: Set<Int32> = []) {
        self.temperature = temperature; self.topK = topK; self.topP = topP; self.minP = minP
        self.maxNewTokens = maxNewTokens; self.stopTokens = stopTokens
    }
}

/// Why a sequence ended.
public enum FinishReason: String, Codable {
    /// A stop token or stop condition.
    case stop
    /// `maxNewTokens` reached.
    case length
}

/// One generated continuation.
public struct GeneratedSequence {
    public var tokens: [Int32]
    /// log softmax(logits / temperature) of each sampled token: the sampling policy's log-probs
    /// (before top-k/p filtering, as the trainer recomputes them), 0 when greedy.
    public var logprobs: [Float]
    public var finishReason: FinishReason
}

/// Draws one token from a row of logits with `options`, returning it with its log-prob.
public func sampleToken(_ logits: UnsafePointer<Float>, vocab V: Int, options: SamplingOptions,
                        rng: inout SeededRandom) -> (token: Int32, logprob: Float) {
    var best = 0
    for v in 1..<V where logits[v] > logits[best] { best = v }
    guard options.temperature > 0 else { return (Int32(best), 0) }
    let invT = 1 / options.temperature, top = logits[best]
    var total: Double = 0
    for v in 0..<V { total += Double(expf((logits[v] - top) * invT)) }
    func p(_ v: Int) -> Double { Double(expf((logits[v] - top) * invT)) / total }
    var candidates: [(token: Int, p: Double)]
    if options.topK == nil && options.topP == nil && options.minP == nil {
        candidates = (0..<V).map { ($0, p($0)) }
    } else {
        let floor = (options.minP.map(Double.init) ?? 0) * p(best)
        candidates = (0..<V).compactMap { v in let q = p(v); return q >= floor ? (v, q) : nil }
        candidates.sort { $0.p > $1.p || ($0.p == $1.p && $0.token < $1.token) }
        if let k = options.topK, k > 0, candidates.count > k {
            // Tokens tied with the k-th stay, as vLLM and transformers keep them.
            let kth = candidates[k - 1].p
            candidates.removeAll { $0.p < kth }
        }
        if let topP = options.topP, topP < 1 {
            var mass = 0.0, keep = 0
            for c in candidates { mass += c.p; keep += 1; if mass >= Double(topP) { break } }
            candidates.removeLast(candidates.count - keep)
        }
    }
    let kept = candidates.reduce(0) { $0 + $1.p }
    let target = Double(rng.uniform()) * kept
    var running = 0.0, chosen = candidates.last!.token
    for c in candidates {
        running += c.p
        if running > target { chosen = c.token; break }
    }
    return (Int32(chosen), Float(log(p(chosen))))
}

extension Transformer {
    /// Rows decoded together by one thread. Groups of a fixed size (not one per thread) keep
    /// every row's numbers independent of the thread count.
    public static let decodeGroupRows = 8

    /// Samples continuations of several prompts at once with a KV cache. The rows are cut into
    /// groups of `decodeGroupRows`, decoded in parallel, one group per thread at a time: at a
    /// decode step's size, splitting each op across threads costs more in wake-ups than the op
    /// itself (`Parallel.serially`). In a group the prompts are left-padded into one prefill,
    /// then every step decodes one token for all its unfinished rows with one batched forward,
    /// whose products run on the weights' panel copy (`DecodeWeights`, packed once per call).
    /// Row i draws from `rngs[i]`, so a row's output depends only on its own generator, never
    /// on the batch. A row stops at a stop token, when `shouldStop` (given the row and its
    /// tokens so far) says so, or after `maxNewTokens`.
    public func generate(prompts: [[Int32]], options: SamplingOptions, rngs: [SeededRandom],
                         shouldStop: ((Int, [Int32]) -> Bool)? = nil) -> [GeneratedSequence] {
        precondition(rngs.count == prompts.count, "generate: one generator per prompt")
        let groups = stride(from: 0, to: prompts.count, by: Transformer.decodeGroupRows).map {
            $0..<min($0 + Transformer.decodeGroupRows, prompts.count)
        }
        var out = [[GeneratedSequence]](repeating: [], count: groups.count)
        // Graph recording is switched off here, once: the mode is process-wide, not per thread.
        GradMode.withoutGrad {
            let packed = DecodeWeights(self)
            out.withUnsafeMutableBufferPointer { results in
                Parallel.forEach(groups.count) { chunk in
                    Parallel.serially {
                        for g in chunk {
                            let rows = groups[g]
                            results[g] = generateGroup(prompts: Array(prompts[rows]), options: options, rngs: Array(rngs[rows]), packed: packed) {
                                shouldStop?(rows.lowerBound + $0, $1) ?? false
                            }
                        }
                    }
                }
            }
        }
        return out.flatMap { $0 }
    }

    /// One group's decode; the caller has switched graph recording off.
    func generateGroup(prompts: [[Int32]], options: SamplingOptions, rngs: [SeededRandom], packed: DecodeWeights,
                       shouldStop: (Int, [Int32]) -> Bool) -> [GeneratedSequence] {
        let B = prompts.count, P = prompts.map(\.count).max() ?? 0, V = config.vocabSize
        var out = prompts.map { _ in GeneratedSequence(tokens: [], logprobs: [], finishReason: .length) }
        guard B > 0, P > 0, options.maxNewTokens > 0 else { return out }
        var rngs = rngs
        var done = [Bool](repeating: false, count: B)
        let pad = Int32(config.padTokenId ?? 0)
        // Prefill each distinct prompt once (GRPO's G samples of a prompt share it), left-padded
        // to P, with logits only at its last position; every row then copies its prompt's keys
        // and values into the decode cache.
        let (distinct, source) = distinctSequences(prompts)
        let D = distinct.count
        var tokens = [Int32](repeating: pad, count: D * P), mask = [Bool](repeating: false, count: D * P)
        for (d, prompt) in distinct.enumerated() {
            for (t, id) in prompt.enumerated() {
                tokens[d * P + P - prompt.count + t] = id
                mask[d * P + P - prompt.count + t] = true
            }
        }
        let prefill = KVCache(config: config, batch: D, capacity: P, layout: decodeCacheLayout)
        let hidden = hiddenStates(tokens: tokens, batch: D, attentionMask: mask, cache: prefill)
        let promptLogits = logits(gatherRows(hidden, (0..<D).map { Int32($0 * P + P - 1) }))  // (D, V)
        let cache = KVCache(config: config, batch: B, capacity: P + options.maxNewTokens, layout: decodeCacheLayout)
        cache.copyRows(of: prefill, sources: source)
        var logits = gatherRows(promptLogits, source.map(Int32.init))  // (B, V): one row per batch row
        for _ in 0..<options.maxNewTokens {
            var next = [Int32](repeating: pad, count: B)
            for b in 0..<B where !done[b] {
                let (token, logprob) = sampleToken(logits.data + b * V, vocab: V, options: options, rng: &rngs[b])
                next[b] = token
                out[b].tokens.append(token)
                out[b].logprobs.append(logprob)
                if options.stopTokens.contains(token) || shouldStop(b, out[b].tokens) {
                    done[b] = true
                    out[b].finishReason = .stop
                } else if out[b].tokens.count == options.maxNewTokens {
                    done[b] = true
                }
            }
            if done.allSatisfy({ $0 }) { break }
            logits = decodeStep(tokens: next, attentionMask: done.map { !$0 }, cache: cache, packed: packed)
        }
        return out
    }

    /// Convenience: one generator per prompt from `seed` (row i uses stream i), token ids only.
    public func generate(prompts: [[Int32]], maxNewTokens: Int, temperature: Float, seed: UInt64,
                         stopTokens: Set<Int32> = []) -> [[Int32]] {
        let options = SamplingOptions(temperature: temperature, maxNewTokens: maxNewTokens, stopTokens: stopTokens)
        return generate(prompts: prompts, options: options, rngs: prompts.indices.map { SeededRandom(seed: seed, streams: [UInt64($0)]) })
            .map(\.tokens)
    }
}
