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
    /// Rows whose prompts are left-padded together, so that a prompt's padding depends on its
    /// group alone, not on the thread count.
    public static let decodeGroupRows = 8

    /// Samples continuations of several prompts at once with a KV cache. The rows are cut into
    /// groups of `decodeGroupRows`, all prefilled in one forward (each group's prompts left-padded
    /// to its own longest, so a prompt's padding depends only on its group). Each thread then
    /// decodes its share of the groups in step: one batched forward per step for all their
    /// unfinished rows, whose products run on the weights' panel copy (`DecodeWeights`, packed
    /// once per call), so every weight is read once a step for all of a thread's rows. Splitting
    /// each op across threads instead would cost more in wake-ups than the op itself
    /// (`Parallel.serially`). Row i draws from `rngs[i]`, its own generator; decode steps compute
    /// each row on its own (the panel kernel), so a row's output does not depend on the thread
    /// count. A row stops at a stop token, when `shouldStop` (given the row and its tokens so
    /// far) says so, or after `maxNewTokens`.
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
            // Every group's prefill in one forward before the workers split them, so the rows of each
            // BLAS call (which its rounding follows) depend on the prompts, not on the thread count.
            let prefilled = prefill(groups, prompts: prompts, options: options, rngs: rngs)
            out.withUnsafeMutableBufferPointer { results in
                Parallel.forEach(groups.count) { chunk in
                    Parallel.serially {
                        let decoded = decode(Array(prefilled[chunk]), options: options, packed: packed) { shouldStop?($0, $1) ?? false }
                        for (g, sequences) in zip(chunk, decoded) { results[g] = sequences }
                    }
                }
            }
        }
        return out.flatMap { $0 }
    }

    /// A group of rows between decode steps: its cache, each row's output so far, and the logits
    /// its next tokens are drawn from (no cache: the group is finished, or never started).
    struct DecodingGroup {
        let rows: Range<Int>
        var out: [GeneratedSequence]
        var rngs: [SeededRandom]
        var done: [Bool]
        var cache: KVCache?
        var logits: Tensor?
    }

    /// Decodes prefilled groups in step; the caller has switched graph recording off.
    func decode(_ states: [DecodingGroup], options: SamplingOptions, packed: DecodeWeights,
                shouldStop: (Int, [Int32]) -> Bool) -> [[GeneratedSequence]] {
        var states = states
        let pad = Int32(config.padTokenId ?? 0), V = config.vocabSize
        for _ in 0..<options.maxNewTokens {
            var stepping: [Int] = [], inputs: [CachedRows] = []
            for s in states.indices {
                guard let cache = states[s].cache, let logits = states[s].logits else { continue }
                var next = [Int32](repeating: pad, count: states[s].done.count)
                for b in next.indices where !states[s].done[b] {
                    let (token, logprob) = sampleToken(logits.data + b * V, vocab: V, options: options, rng: &states[s].rngs[b])
                    next[b] = token
                    states[s].out[b].tokens.append(token)
                    states[s].out[b].logprobs.append(logprob)
                    if options.stopTokens.contains(token) || shouldStop(states[s].rows.lowerBound + b, states[s].out[b].tokens) {
                        states[s].done[b] = true
                        states[s].out[b].finishReason = .stop
                    } else if states[s].out[b].tokens.count == options.maxNewTokens {
                        states[s].done[b] = true
                    }
                }
                if states[s].done.allSatisfy({ $0 }) {
                    states[s].cache = nil; states[s].logits = nil  // finished: its cache is freed now
                    continue
                }
                stepping.append(s)
                inputs.append(CachedRows(tokens: next, attentionMask: states[s].done.map { !$0 }, cache: cache))
            }
            if stepping.isEmpty { break }
            let logits = decodeStep(inputs, packed: packed)
            var row = 0
            for s in stepping {
                let B = states[s].done.count
                states[s].logits = logits.rows(row..<row + B)
                row += B
            }
        }
        return states.map(\.out)
    }

    /// The groups' prefill, in one forward: each distinct prompt of a group once (GRPO's G samples
    /// of a prompt share it), left-padded to the group's longest, with logits only at its last
    /// position; every row then copies its prompt's keys and values into its group's decode cache.
    func prefill(_ groups: [Range<Int>], prompts: [[Int32]], options: SamplingOptions, rngs: [SeededRandom]) -> [DecodingGroup] {
        var states = groups.map { rows in
            DecodingGroup(rows: rows, out: rows.map { _ in GeneratedSequence(tokens: [], logprobs: [], finishReason: .length) },
                          rngs: Array(rngs[rows]), done: [Bool](repeating: false, count: rows.count))
        }
        guard options.maxNewTokens > 0 else { return states }
        let pad = Int32(config.padTokenId ?? 0)
        var inputs: [CachedRows] = [], sources: [[Int]] = [], starting: [Int] = []
        for (s, rows) in groups.enumerated() {
            let P = rows.map { prompts[$0].count }.max() ?? 0
            guard P > 0 else { continue }  // no rows, or only empty prompts
            let (distinct, source) = distinctSequences(Array(prompts[rows]))
            var tokens = [Int32](repeating: pad, count: distinct.count * P), mask = [Bool](repeating: false, count: distinct.count * P)
            for (d, prompt) in distinct.enumerated() {
                for (t, id) in prompt.enumerated() {
                    tokens[d * P + P - prompt.count + t] = id
                    mask[d * P + P - prompt.count + t] = true
                }
            }
            inputs.append(CachedRows(tokens: tokens, attentionMask: mask,
                                     cache: KVCache(config: config, batch: distinct.count, capacity: P, layout: decodeCacheLayout)))
            sources.append(source)
            starting.append(s)
        }
        guard !inputs.isEmpty else { return states }
        let hidden = hiddenStates(inputs, packed: nil)
        // Each distinct prompt's last position: row d·P + P − 1 of its group's block.
        var lastRows: [Int32] = [], first = [0], offset = 0
        for input in inputs {
            let D = input.cache.batch, P = input.tokens.count / D
            lastRows += (0..<D).map { Int32(offset + $0 * P + P - 1) }
            offset += input.tokens.count
            first.append(first.last! + D)
        }
        let promptLogits = logits(gatherRows(hidden, lastRows))  // (Σ D, V)
        for (k, s) in starting.enumerated() {
            let prefilled = inputs[k].cache
            let cache = KVCache(config: config, batch: groups[s].count, capacity: prefilled.capacity + options.maxNewTokens,
                                layout: decodeCacheLayout)
            cache.copyRows(of: prefilled, sources: sources[k])
            states[s].cache = cache
            states[s].logits = gatherRows(promptLogits, sources[k].map { Int32(first[k] + $0) })  // (B, V): one row per batch row
        }
        return states
    }

    /// Convenience: one generator per prompt from `seed` (row i uses stream i), token ids only.
    public func generate(prompts: [[Int32]], maxNewTokens: Int, temperature: Float, seed: UInt64,
                         stopTokens: Set<Int32> = []) -> [[Int32]] {
        let options = SamplingOptions(temperature: temperature, maxNewTokens: maxNewTokens, stopTokens: stopTokens)
        return generate(prompts: prompts, options: options, rngs: prompts.indices.map { SeededRandom(seed: seed, streams: [UInt64($0)]) })
            .map(\.tokens)
    }
}
