import Foundation
import GroveData
import GroveModel
import GroveTensor
import GroveTokenizer

/// Held-out evaluation: the loss on reference completions, and task accuracy measured by
/// generating greedy answers and checking them (`eval/loss`, `eval/accuracy`, and
/// `eval/accuracy/<level>` when rows carry a `level` field). With `passK` = k > 0 also
/// `eval/pass@k` (and per level): the fraction of problems that at least one of k samples at
/// temperature 1 solves — the most GRPO with groups of k can reach by sharpening the policy
/// towards what its samples already find.
public struct Evaluator {
    public let examples: [Example]
    public let tokenizer: Tokenizer
    public let maxNewTokens: Int
    public let maxLength: Int
    /// Judges one generated completion against its example; nil: loss only.
    public let isCorrect: ((String, Example) -> Bool)?
    /// Sequences per batched generation / loss forward.
    public var batchSize = 64
    /// Samples per problem for `eval/pass@k`; 0: not measured.
    public var passK = 0
    /// The ranks of a data-parallel run: rank r evaluates batches r, r + size, … (the same
    /// batches one process forms, so the same greedy answers) and the ranks exchange the results.
    public var communicator: Communicator = SingleProcess()

    public init(examples: [Example], tokenizer: Tokenizer, maxNewTokens: Int, maxLength: Int,
                isCorrect: ((String, Example) -> Bool)?) {
        self.examples = examples; self.tokenizer = tokenizer; self.maxNewTokens = maxNewTokens
        self.maxLength = maxLength; self.isCorrect = isCorrect
    }

    /// One generated answer and its verdict.
    public struct Sample {
        public let example: Example
        public let completion: String
        public let correct: Bool
    }

    /// Metrics for `model`, plus the generated samples (for reports).
    public func evaluate(_ model: Transformer) -> (metrics: EvalMetrics, samples: [Sample]) {
        GradMode.withoutGrad {
            var metrics: [String: Double] = [:]
            if let loss = heldOutLoss(model) { metrics["eval/loss"] = loss }
            guard let isCorrect else { return (EvalMetrics(metrics), []) }
            let texts = eachBatch(of: batchSize) { range in
                let prompts = examples[range].map { tokenizer.encode($0.prompt).map(Int32.init) }
                return model.generate(prompts: prompts, maxNewTokens: maxNewTokens, temperature: 0, seed: 0, stopTokens: stopTokens)
                    .map { tokenizer.decode($0.map(Int.init), skipSpecialTokens: true) }
            }
            let samples = zip(examples, texts).map { ex, text in Sample(example: ex, completion: text, correct: isCorrect(text, ex)) }
            Evaluator.record(samples, as: "eval/accuracy", into: &metrics)
            if passK > 0 { Evaluator.record(passAtK(model, isCorrect: isCorrect), as: "eval/pass@\(passK)", into: &metrics) }
            return (EvalMetrics(metrics), samples)
        }
    }

    /// Stores the fraction of correct `samples` under `name`, and per `level` when rows have several.
    static func record(_ samples: [Sample], as name: String, into metrics: inout [String: Double]) {
        metrics[name] = accuracy(samples)
        let levels = Dictionary(grouping: samples) { $0.example.row["level"] as? String ?? "" }
        if levels.count > 1 {
            for (level, group) in levels where !level.isEmpty { metrics["\(name)/\(level)"] = accuracy(group) }
        }
    }

    /// One verdict per problem: correct when any of its `passK` samples (temperature 1, sample s
    /// of problem i drawn from `SeededRandom(seed: 0, streams: [i, s])`, so pass@k grows with k)
    /// is. The completion kept is the first correct sample, else the first.
    func passAtK(_ model: Transformer, isCorrect: (String, Example) -> Bool) -> [Sample] {
        let options = SamplingOptions(temperature: 1, maxNewTokens: maxNewTokens, stopTokens: stopTokens)
        let texts = eachBatch(of: max(1, batchSize / passK)) { range in
            let prompts = examples[range].flatMap { ex in Array(repeating: tokenizer.encode(ex.prompt).map(Int32.init), count: passK) }
            let rngs = range.flatMap { i in (0..<passK).map { SeededRandom(seed: 0, streams: [UInt64(i), UInt64($0)]) } }
            return model.generate(prompts: prompts, options: options, rngs: rngs).map { tokenizer.decode($0.tokens.map(Int.init), skipSpecialTokens: true) }
        }
        return examples.indices.map { i in
            let mine = texts[i * passK..<(i + 1) * passK]
            let hit = mine.first { isCorrect($0, examples[i]) }
            return Sample(example: examples[i], completion: hit ?? mine[mine.startIndex], correct: hit != nil)
        }
    }

    /// `work` on every batch of `size` examples, in order, its results joined; in a data-parallel
    /// run this rank does its share of the batches and the ranks exchange their texts.
    func eachBatch(of size: Int, _ work: (Range<Int>) -> [String]) -> [String] {
        let batches = stride(from: 0, to: examples.count, by: size).map { $0..<min($0 + size, examples.count) }
        guard communicator.size > 1 else { return batches.flatMap(work) }
        var done: [Int: [String]] = [:]
        for b in communicator.share(batches.count) { done[b] = work(batches[b]) }
        // Encoding strings and decoding what this program encoded cannot fail.
        let mine = try! JSONEncoder().encode(done)
        for bytes in communicator.allGather(Array(mine)) {
            done.merge(try! JSONDecoder().decode([Int: [String]].self, from: Data(bytes))) { a, _ in a }
        }
        return batches.indices.flatMap { done[$0]! }
    }

    /// Generation stops at the tokenizer's end-of-sequence token, greedy or sampled.
    var stopTokens: Set<Int32> { Set([tokenizer.eosTokenId.map(Int32.init)].compactMap { $0 }) }

    static func accuracy(_ samples: [Sample]) -> Double {
        samples.isEmpty ? 0 : Double(samples.filter(\.correct).count) / Double(samples.count)
    }

    /// Mean negative log-likelihood of the reference completions' tokens; nil when no held-out row
    /// has a completion (prompt-only rows, as GRPO prompt files are, have nothing to score).
    func heldOutLoss(_ model: Transformer) -> Double? {
        let eos = tokenizer.eosTokenId.map(Int32.init)
        let pad = Int32(tokenizer.padTokenId ?? tokenizer.eosTokenId ?? 0)
        let scored = examples.filter { !$0.completion.isEmpty }
        guard !scored.isEmpty else { return nil }
        var total = 0.0, count = 0
        // A data-parallel rank: its share of the batches, the sums added over ranks.
        let starts = Array(stride(from: 0, to: scored.count, by: batchSize))
        for b in communicator.share(starts.count) {
            let batch = SFTBatch(scored[starts[b]..<min(starts[b] + batchSize, scored.count)].map {
                TokenizedExample($0, tokenizer: tokenizer, eos: eos, maxLength: maxLength)
            }, padToken: pad)
            let logp = tokenLogProbs(model.forward(tokens: batch.tokens, batch: batch.batch), targets: batch.targets)
            for i in 0..<logp.count where batch.targets[i] >= 0 { total -= Double(logp.data[i]) }
            count += batch.targetCount
        }
        let sums = communicator.sum([total, Double(count)])
        return sums[1] == 0 ? 0 : sums[0] / sums[1]
    }
}
