import Foundation
import GroveTestSupport
import XCTest
@testable import GroveModel
@testable import GroveTensor

/// `sampleToken`'s filters on hand-made logits: which tokens can be drawn, and how often.
final class SamplingTests: XCTestCase {
    /// p = [0.4, 0.2, 0.2, 0.1, 0.06, 0.04] at temperature 1; tokens 1 and 2 tie.
    let probs: [Float] = [0.4, 0.2, 0.2, 0.1, 0.06, 0.04]
    var logits: [Float] { probs.map { logf($0) } }

    /// How often each token is drawn in `n` seeded draws.
    func frequencies(_ logits: [Float], _ options: SamplingOptions, n: Int = 4000, seed: UInt64 = 1) -> [Int: Double] {
        var rng = SeededRandom(seed: seed)
        var counts: [Int: Int] = [:]
        for _ in 0..<n { counts[Int(sampleToken(logits, vocab: logits.count, options: options, rng: &rng).token), default: 0] += 1 }
        return counts.mapValues { Double($0) / Double(n) }
    }

    /// The tokens `options` can draw from `logits`.
    func survivors(_ logits: [Float], _ options: SamplingOptions) -> Set<Int> { Set(frequencies(logits, options).keys) }

    func testNoFilterDrawsEveryTokenInProportion() {
        let f = frequencies(logits, SamplingOptions())
        XCTAssertEqual(Set(f.keys), Set(0..<6))
        for (v, p) in probs.enumerated() { XCTAssertEqual(f[v]!, Double(p), accuracy: 0.025, "token \(v)") }
    }

    func testTopK() {
        XCTAssertEqual(survivors(logits, SamplingOptions(topK: 1)), [0])
        XCTAssertEqual(survivors(logits, SamplingOptions(topK: 4)), [0, 1, 2, 3])
        // A tie at the k-th place keeps both (as vLLM and transformers do).
        XCTAssertEqual(survivors(logits, SamplingOptions(topK: 2)), [0, 1, 2])
        XCTAssertEqual(survivors(logits, SamplingOptions(topK: 100)), Set(0..<6), "k beyond the vocabulary keeps all")
        // The draw is renormalised over the kept tokens: 0.4 / 0.8.
        XCTAssertEqual(frequencies(logits, SamplingOptions(topK: 3))[0]!, 0.5, accuracy: 0.025)
    }

    func testTopP() {
        XCTAssertEqual(survivors(logits, SamplingOptions(topP: 0.3)), [0])
        // 0.4 + 0.2 reaches 0.55: of the tied pair only the lower id is needed.
        XCTAssertEqual(survivors(logits, SamplingOptions(topP: 0.55)), [0, 1])
        XCTAssertEqual(survivors(logits, SamplingOptions(topP: 0.65)), [0, 1, 2])
        XCTAssertEqual(survivors(logits, SamplingOptions(topP: 0.95)), [0, 1, 2, 3, 4])
        XCTAssertEqual(survivors(logits, SamplingOptions(topP: 1)), Set(0..<6))
        XCTAssertEqual(survivors(logits, SamplingOptions(topP: 0)), [0], "the most likely token is always kept")
        XCTAssertEqual(frequencies(logits, SamplingOptions(topP: 0.65))[0]!, 0.5, accuracy: 0.025)
    }

    func testMinP() {
        XCTAssertEqual(survivors(logits, SamplingOptions(minP: 0)), Set(0..<6))
        // The floor is minP × 0.4: 0.18 keeps the tied pair, 0.22 drops it, 0.08 keeps 0.1, 0.048 keeps 0.06.
        XCTAssertEqual(survivors(logits, SamplingOptions(minP: 0.45)), [0, 1, 2])
        XCTAssertEqual(survivors(logits, SamplingOptions(minP: 0.55)), [0])
        XCTAssertEqual(survivors(logits, SamplingOptions(minP: 0.2)), [0, 1, 2, 3])
        XCTAssertEqual(survivors(logits, SamplingOptions(minP: 0.12)), [0, 1, 2, 3, 4])
        XCTAssertEqual(survivors(logits, SamplingOptions(minP: 1)), [0])
        XCTAssertEqual(survivors([2, 2, 1, 0], SamplingOptions(minP: 1)), [0, 1], "tokens tied with the maximum all pass min-p 1")
    }

    /// The filters intersect, each judged on p = softmax(logits / temperature), not renormalised
    /// between them (vLLM renormalises after top-k, so top-k 2 then top-p 0.5 keeps only token 0 there).
    func testFiltersCombine() {
        XCTAssertEqual(survivors(logits, SamplingOptions(topK: 4, topP: 0.65)), [0, 1, 2])
        XCTAssertEqual(survivors(logits, SamplingOptions(topK: 2, topP: 0.5)), [0, 1])
        XCTAssertEqual(survivors(logits, SamplingOptions(topK: 2, minP: 0.55)), [0])
        XCTAssertEqual(survivors(logits, SamplingOptions(topP: 0.95, minP: 0.2)), [0, 1, 2, 3])
    }

    func testTemperature() {
        // Temperature 0 is greedy, takes the first of tied maxima and reports log-prob 0.
        let greedy = SamplingOptions(temperature: 0, topK: 3)
        XCTAssertEqual(survivors([1, 3, 3, 2], greedy), [1])
        var rng = SeededRandom(seed: 3)
        XCTAssertEqual(sampleToken([1, 3, 3, 2], vocab: 4, options: greedy, rng: &rng).logprob, 0)
        // Temperature 0.5 squares the odds: p ∝ [0.16, 0.04, 0.04, …].
        let sharp = frequencies(logits, SamplingOptions(temperature: 0.5))
        let z = probs.reduce(0) { $0 + Double($1 * $1) }
        XCTAssertEqual(sharp[0]!, 0.16 / z, accuracy: 0.025)
    }

    /// The log-prob is the sampling policy's, log softmax(logits / T), before any filter.
    func testLogprobIgnoresFilters() {
        var rng = SeededRandom(seed: 5)
        let (token, logprob) = sampleToken(logits, vocab: 6, options: SamplingOptions(temperature: 1, topK: 1), rng: &rng)
        XCTAssertEqual(token, 0)
        XCTAssertEqual(logprob, logf(0.4), accuracy: 1e-5)
        let (_, sharp) = sampleToken(logits, vocab: 6, options: SamplingOptions(temperature: 0.5, topK: 1), rng: &rng)
        XCTAssertEqual(sharp, logf(0.16 / Float(probs.reduce(0) { $0 + $1 * $1 })), accuracy: 1e-5)
    }

    func testSeededDrawsRepeat() {
        let options = SamplingOptions(temperature: 0.8, topK: 5, topP: 0.9, minP: 0.05)
        func draws(_ seed: UInt64) -> [Int32] {
            var rng = SeededRandom(seed: seed, streams: [2, 7])
            return (0..<64).map { _ in sampleToken(logits, vocab: 6, options: options, rng: &rng).token }
        }
        XCTAssertEqual(draws(11), draws(11))
        XCTAssertNotEqual(draws(11), draws(12))
    }
}
