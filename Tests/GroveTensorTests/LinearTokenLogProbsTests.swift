import XCTest
@testable import GroveTensor

/// `linearTokenLogProbs` (the LM head and the targets' log-probs, chunked over rows) against
/// finite differences, against the ops it fuses, and its entropies against the definition.
final class LinearTokenLogProbsTests: XCTestCase {
    // N 7 rows, C 5, V 13; row 3 is padding. chunkFloats 3·13: chunks of 3, 3 and 1 rows.
    let targets: [Int32] = [2, 12, 0, -1, 7, 7, 1]

    func testGradientsInChunks() {
        let h = randomTensor([7, 5], seed: 31), w = randomTensor([13, 5], seed: 32)
        for (chunk, s) in [(3 * 13, Float(1)), (3 * 13, 0.7), (1 << 20, 0.7), (13, 1.3)] {
            checkGradients("linearTokenLogProbs chunk \(chunk) scale \(s)", inputs: [h, w]) {
                linearTokenLogProbs($0[0], $0[1], scale: s, targets: self.targets, chunkFloats: chunk).logp
            }
        }
    }

    /// One chunk: bit for bit tokenLogProbs(scale(linear(h, W), s)), values and both gradients
    /// (the GRPO step of a small vocabulary is unchanged). Several chunks: the same within rounding.
    func testMatchesTheOpsItFuses() {
        let s: Float = 1 / 0.7
        var rng = SeededRandom(seed: 5)
        let dy = (0..<7).map { _ in rng.normal() }
        func run(_ fused: Bool, chunk: Int) -> (logp: [Float], dh: [Float], dw: [Float]) {
            let h = randomTensor([7, 5], seed: 31), w = randomTensor([13, 5], seed: 32)
            h.requireGrad(); w.requireGrad()
            let logp = fused ? linearTokenLogProbs(h, w, scale: s, targets: targets, chunkFloats: chunk).logp
                             : tokenLogProbs(scale(linear(h, w), s), targets: targets)
            let values = logp.values
            logp.backward(seed: dy)
            return (values, h.gradValues!, w.gradValues!)
        }
        let reference = run(false, chunk: 0), whole = run(true, chunk: 1 << 20), chunked = run(true, chunk: 3 * 13)
        XCTAssertEqual(whole.logp, reference.logp)
        XCTAssertEqual(whole.dh, reference.dh)
        XCTAssertEqual(whole.dw, reference.dw)
        XCTAssertEqual(reference.logp[3], 0)
        for (a, b) in zip(chunked.logp + chunked.dh + chunked.dw, reference.logp + reference.dh + reference.dw) {
            XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(b)))
        }
    }

    /// Backward twice accumulates twice, in both operands.
    func testBackwardAccumulates() {
        let h = randomTensor([7, 5], seed: 31), w = randomTensor([13, 5], seed: 32)
        h.requireGrad(); w.requireGrad()
        linearTokenLogProbs(h, w, targets: targets, chunkFloats: 3 * 13).logp.backward(seed: [Float](repeating: 1, count: 7))
        let (dh, dw) = (h.gradValues!, w.gradValues!)
        linearTokenLogProbs(h, w, targets: targets, chunkFloats: 3 * 13).logp.backward(seed: [Float](repeating: 1, count: 7))
        for (a, b) in zip(h.gradValues! + w.gradValues!, dh + dw) { XCTAssertEqual(a, 2 * b, accuracy: 1e-6 * max(1, abs(b))) }
    }

    /// The one-pass entropy (log Z − Σ e·d / Z) against −Σ p log p in Double, on the scaled
    /// logits, unselected rows 0; a near one-hot row has entropy ≈ 0, a constant one log V.
    func testEntropy() {
        let N = 4, C = 3, V = 300
        var rng = SeededRandom(seed: 3, streams: [1])
        let h = Tensor((0..<N * C).map { _ in 2 * Float(rng.uniform()) - 1 }, shape: [N, C])
        var wv = (0..<V * C).map { _ in 3 * Float(rng.uniform()) - 1.5 }
        for c in 0..<C { wv[7 * C + c] = 40 * h.values[1 * C + c] }  // row 1's logit 7 dwarfs the rest
        let w = Tensor(wv, shape: [V, C]), s: Float = 0.8
        let rows = [true, true, false, true]
        let entropy = linearTokenLogProbs(h, w, scale: s, targets: [0, 1, 2, 3], entropyRows: rows, chunkFloats: 2 * V).entropy
        for r in 0..<N {
            let x = (0..<V).map { v in Double(s) * (0..<C).reduce(0.0) { $0 + Double(h.values[r * C + $1]) * Double(wv[v * C + $1]) } }
            let m = x.max()!, z = x.reduce(0) { $0 + exp($1 - m) }
            let expected = rows[r] ? -x.reduce(0) { let p = exp($1 - m) / z; return $0 + p * log(p) } : 0
            XCTAssertEqual(Double(entropy[r]), expected, accuracy: 1e-4 * max(expected, 1e-2), "row \(r)")
        }
        XCTAssertLessThan(entropy[1], 1e-3)
        let flat = linearTokenLogProbs(Tensor(zeros: [1, C]), w, targets: [0], entropyRows: [true]).entropy[0]
        XCTAssertEqual(Double(flat), log(Double(V)), accuracy: 1e-5)
    }
}
