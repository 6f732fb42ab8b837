import XCTest
@testable import GroveTensor

/// Finite-difference checks of the ops DeepSeek's latent attention and MoE added (see GradientCheck.swift).
final class OpsExpertsGradientTests: XCTestCase {
    func testColumnsAndConcatHeads() {
        let x = randomTensor([3, 2, 7], seed: 1)
        checkGradients("columns", inputs: [x]) { columns($0[0], 2..<5) }
        let xs = x.values
        let lastTwo: [Float] = (0..<6).flatMap { r -> [Float] in [xs[r * 7 + 5], xs[r * 7 + 6]] }
        XCTAssertEqual(columns(x, 5..<7).values, lastTwo)
        let a = randomTensor([3, 2, 4], seed: 2), b = randomTensor([3, 2, 3], seed: 3), shared = randomTensor([3, 1, 3], seed: 4)
        checkGradients("concatHeads", inputs: [a, b]) { concatHeads($0[0], $0[1]) }
        // One head for all: its gradient sums over the heads.
        checkGradients("concatHeads (shared head)", inputs: [a, shared]) { concatHeads($0[0], $0[1]) }
        let secondHead: [Float] = Array(a.values[4..<8]) + Array(shared.values[0..<3])
        XCTAssertEqual(Array(concatHeads(a, shared).values[7..<14]), secondHead)
    }

    /// DeepSeek's interleaved pairs with YaRN's factor on cos and sin: against the definition, and the backward.
    func testRoPEPairsWithAttentionFactor() {
        let freqs: [Float] = [1, 0.3, 0.05]
        let table = RoPETable(headDim: 6, inverseFrequencies: freqs, attentionFactor: 1.2, layout: .pairs)
        let x = randomTensor([4, 2, 6], seed: 5), positions: [Int32] = [0, 3, 1, 7]
        checkGradients("rope (pairs)", inputs: [x]) { rope($0[0], positions: positions, table: table) }
        let y = rope(x, positions: positions, table: table).values
        for r in 0..<4 {
            for h in 0..<2 {
                for i in 0..<3 {
                    let angle = Double(Float(positions[r]) * freqs[i]), base = (r * 2 + h) * 6
                    let a = Double(x.values[base + 2 * i]), b = Double(x.values[base + 2 * i + 1])
                    XCTAssertEqual(Double(y[base + 2 * i]), 1.2 * (a * cos(angle) - b * sin(angle)), accuracy: 1e-5)
                    XCTAssertEqual(Double(y[base + 2 * i + 1]), 1.2 * (b * cos(angle) + a * sin(angle)), accuracy: 1e-5)
                }
            }
        }
    }

    /// MLA's values are narrower than its query/key heads.
    func testAttentionWithNarrowerValues() {
        let q = randomTensor([2, 4, 4, 5], seed: 6), k = randomTensor([2, 4, 2, 5], seed: 7), v = randomTensor([2, 4, 2, 3], seed: 8)
        let mask = [true, true, true, true, false, true, true, true]
        checkGradients("attention (HSV < HS)", inputs: [q, k, v]) { attention($0[0], $0[1], $0[2], keyMask: mask) }
        checkGradients("attention (HSV < HS, blocks)", inputs: [q, k, v]) { attention($0[0], $0[1], $0[2], keyMask: mask, rowBlock: 3) }
        XCTAssertEqual(attention(q, k, v).shape, [2, 4, 4, 3])
    }

    /// Values read from the keys' first elements (MLA's latent cache: one row [c_KV | k_R] per position):
    /// the same as passing that slice as v, and the gradient of both uses lands in the one tensor.
    func testAttentionWithValuesInsideTheKeys() {
        let q = randomTensor([1, 3, 4, 5], seed: 13), latents = randomTensor([1, 5, 1, 5], seed: 14)
        let separate = attention(q, latents, columns(latents, 0..<3), keyLength: 5).values
        for (a, b) in zip(attention(q, latents, latents, keyLength: 5, valueSize: 3).values, separate) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        checkGradients("attention (valueSize)", inputs: [q, latents]) { attention($0[0], $0[1], $0[1], valueSize: 3) }
    }

    func testExpertWeights() {
        let logits = randomTensor([3, 5], seed: 9)
        let experts: [Int32] = [0, 3, 4, 1, 2, 0]
        for scoring in [ExpertScoring.softmax, .sigmoid] {
            for normalize in [false, true] {
                checkGradients("expertWeights \(scoring) normalize \(normalize)", inputs: [logits]) {
                    expertWeights($0[0], experts: experts, k: 2, scoring: scoring, normalize: normalize, scale: 1.7)
                }
            }
        }
        // softmax, no normalisation: λ·softmax(logits)[e].
        let w = expertWeights(logits, experts: experts, k: 2, scoring: .softmax, normalize: false, scale: 1.7).values
        let row = Array(logits.values[0..<5]).map { exp(Double($0)) }, total = row.reduce(0, +)
        XCTAssertEqual(Double(w[1]), 1.7 * row[3] / total, accuracy: 1e-6)
        let normalized = expertWeights(logits, experts: experts, k: 2, scoring: .sigmoid, normalize: true, scale: 2).values
        XCTAssertEqual(normalized[2] + normalized[3], 2, accuracy: 1e-6)
    }

    /// Tokens routed to 2 of 4 experts, expert 3 chosen by none: the gathered GEMMs against the
    /// per-token definition, and every gradient (x, weights, each expert's matrices).
    func testMixtureOfExperts() {
        let N = 5, C = 4, I = 3, E = 4
        let x = randomTensor([N, C], seed: 10), weights = randomTensor([N, 2], seed: 11)
        let experts: [Int32] = [0, 1, 2, 0, 1, 2, 0, 2, 1, 0]
        let gate = (0..<E).map { randomTensor([I, C], seed: 20 + UInt64($0), std: 0.5) }
        let up = (0..<E).map { randomTensor([I, C], seed: 30 + UInt64($0), std: 0.5) }
        let down = (0..<E).map { randomTensor([C, I], seed: 40 + UInt64($0), std: 0.5) }
        checkGradients("mixtureOfExperts", inputs: [x, weights] + gate + up + down) { t in
            mixtureOfExperts(t[0], experts: experts, weights: t[1], gate: Array(t[2..<6]), up: Array(t[6..<10]), down: Array(t[10..<14]))
        }
        let y = mixtureOfExperts(x, experts: experts, weights: weights, gate: gate, up: up, down: down).values
        for n in 0..<N {
            var expected = [Double](repeating: 0, count: C)
            for k in 0..<2 {
                let e = Int(experts[n * 2 + k]), xn = (0..<C).map { Double(x.values[n * C + $0]) }
                let h = (0..<I).map { i -> Double in
                    let g = (0..<C).reduce(0.0) { $0 + Double(gate[e].values[i * C + $1]) * xn[$1] }
                    let u = (0..<C).reduce(0.0) { $0 + Double(up[e].values[i * C + $1]) * xn[$1] }
                    return g / (1 + exp(-g)) * u
                }
                for c in 0..<C { expected[c] += Double(weights.values[n * 2 + k]) * (0..<I).reduce(0.0) { $0 + Double(down[e].values[c * I + $1]) * h[$1] } }
            }
            for c in 0..<C { XCTAssertEqual(Double(y[n * C + c]), expected[c], accuracy: 1e-5, "token \(n)") }
        }
        XCTAssertNil(gate[3].gradValues.flatMap { $0.contains { $0 != 0 } ? $0 : nil }, "no token chose expert 3")
    }

    func testExpertBalanceLoss() {
        let logits = randomTensor([4, 5], seed: 12)
        let experts: [Int32] = [0, 3, 4, 1, 0, 2, 3, 0]
        for scoring in [ExpertScoring.softmax, .sigmoid] {
            checkGradients("expertBalanceLoss \(scoring)", inputs: [logits]) { expertBalanceLoss($0[0], experts: experts, k: 2, scoring: scoring) }
        }
        // Uniform scores: P_i = 1/E, Σ f_i = E, so L = 1 whatever the choice.
        let flat = Tensor(zeros: [4, 5])
        XCTAssertEqual(expertBalanceLoss(flat, experts: experts, k: 2, scoring: .softmax).item, 1, accuracy: 1e-6)
    }
}
