import XCTest
@testable import GroveTensor
import GroveTestSupport

/// Every differentiable op against centred finite differences on small, odd shapes.
final class OpsGradientTests: XCTestCase {
    func testMatmulAllTransposes() {
        for (tA, tB) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = randomTensor(tA ? [5, 3] : [3, 5], seed: 1), b = randomTensor(tB ? [4, 5] : [5, 4], seed: 2)
            checkGradients("matmul tA=\(tA) tB=\(tB)", inputs: [a, b]) { matmul($0[0], $0[1], transposeA: tA, transposeB: tB) }
        }
    }

    func testLinearWithBias() {
        let x = randomTensor([2, 3, 5], seed: 3), w = randomTensor([7, 5], seed: 4), b = randomTensor([7], seed: 5)
        checkGradients("linear", inputs: [x, w, b]) { linear($0[0], $0[1], $0[2]) }
    }

    func testElementwise() {
        let a = randomTensor([3, 7], seed: 6), b = randomTensor([3, 7], seed: 7), bias = randomTensor([7], seed: 8)
        checkGradients("add", inputs: [a, b]) { add($0[0], $0[1]) }
        checkGradients("mul", inputs: [a, b]) { mul($0[0], $0[1]) }
        checkGradients("scale", inputs: [a]) { scale($0[0], -1.7) }
        checkGradients("addBias", inputs: [a, bias]) { addBias($0[0], $0[1]) }
        checkGradients("silu", inputs: [a]) { silu($0[0]) }
        checkGradients("swiglu", inputs: [a, b]) { swiglu($0[0], $0[1]) }
    }

    func testReductions() {
        let a = randomTensor([4, 5], seed: 9)
        checkGradients("sum", inputs: [a]) { sum($0[0]) }
        checkGradients("mean", inputs: [a]) { mean($0[0]) }
    }

    func testGatherAndConcatRows() {
        let table = randomTensor([6, 4], seed: 10), other = randomTensor([2, 4], seed: 30)
        checkGradients("gatherRows", inputs: [table]) { gatherRows($0[0], [3, 0, 3, 5, 1]) }
        checkGradients("rows", inputs: [table]) { mul($0[0].rows(2..<5), $0[0].rows(1..<4)) }
        XCTAssertEqual(table.rows(2..<5).values, Array(table.values[8..<20]))
        checkGradients("concatRows", inputs: [table, other]) { concatRows([$0[0], $0[1]]) }
        XCTAssertEqual(concatRows([table, other]).values, table.values + other.values)
        checkGradients("concatRows of three, one twice", inputs: [table, other]) { concatRows([$0[1], $0[0], $0[1]]) }
    }

    func testRMSNorm() {
        let x = randomTensor([5, 7], seed: 11), w = randomTensor([7], seed: 12)
        checkGradients("rmsNorm", inputs: [x, w]) { rmsNorm($0[0], $0[1], eps: 1e-6) }
        // 70 channels: the kernels' (rms_norm.c) 64-wide vector sums and their tail.
        let wide = randomTensor([3, 70], seed: 14), wideWeight = randomTensor([70], seed: 15)
        checkGradients("rmsNorm wide", inputs: [wide, wideWeight]) { rmsNorm($0[0], $0[1], eps: 1e-6) }
        let y = rmsNorm(wide, wideWeight, eps: 1e-6).values
        for r in 0..<3 {
            let row = wide.values[r * 70..<(r + 1) * 70].map(Double.init)
            let rstd = 1 / (row.reduce(0) { $0 + $1 * $1 } / 70 + 1e-6).squareRoot()
            for c in 0..<70 { XCTAssertEqual(Double(y[r * 70 + c]), row[c] * rstd * Double(wideWeight.values[c]), accuracy: 1e-5) }
        }
    }

    func testRoPE() {
        let x = randomTensor([2, 3, 2, 6], seed: 13)
        let table = RoPETable(headDim: 6, theta: 10_000)
        checkGradients("rope", inputs: [x]) { rope($0[0], positions: [0, 1, 2, 5, 6, 9], table: table) }
    }

    func testSoftmaxFamily() {
        let x = randomTensor([4, 9], seed: 14)
        checkGradients("softmax", inputs: [x]) { softmax($0[0]) }
        checkGradients("logSoftmax", inputs: [x]) { logSoftmax($0[0]) }
        checkGradients("tokenLogProbs", inputs: [x]) { tokenLogProbs($0[0], targets: [2, -1, 8, 0]) }
        checkGradients("crossEntropy", inputs: [x]) { crossEntropy($0[0], targets: [2, -100, 8, 0]) }
    }

    func testAttentionGroupedCausalWithPadding() {
        // B 2, T 4, NH 4, KVH 2, HS 3; row 1 is left-padded by one token.
        let q = randomTensor([2, 4, 4, 3], seed: 15), k = randomTensor([2, 4, 2, 3], seed: 16), v = randomTensor([2, 4, 2, 3], seed: 17)
        let mask = [true, true, true, true, false, true, true, true]
        checkGradients("attention", inputs: [q, k, v]) { attention($0[0], $0[1], $0[2], keyMask: mask) }
        // Query blocks of 3 rows: the second block's GEMMs stop at its last visible key.
        checkGradients("attention (blocks)", inputs: [q, k, v]) { attention($0[0], $0[1], $0[2], keyMask: mask, rowBlock: 3) }
    }

    func testAttentionLongRows() {
        // 70 keys, no mask: the softmax kernels' 16-wide max and 64-wide sums (vector_exp.c),
        // with their tails, over rows of 1 to 70 visible keys.
        let q = randomTensor([1, 70, 2, 2], seed: 23), k = randomTensor([1, 70, 1, 2], seed: 24), v = randomTensor([1, 70, 1, 2], seed: 25)
        checkGradients("attention (long rows)", inputs: [q, k, v]) { attention($0[0], $0[1], $0[2]) }
        let out = attention(q, k, v).values
        for (t, h) in [(0, 0), (15, 1), (16, 0), (63, 1), (69, 0)] {  // against the definition, in Double
            let qt = (0..<2).map { Double(q.values[(t * 2 + h) * 2 + $0]) }
            let scores = (0...t).map { s in (0..<2).reduce(0.0) { $0 + qt[$1] * Double(k.values[s * 2 + $1]) } / 2.0.squareRoot() }
            let top = scores.max()!, weights = scores.map { exp($0 - top) }, total = weights.reduce(0, +)
            for d in 0..<2 {
                let expected = (0...t).reduce(0.0) { $0 + weights[$1] / total * Double(v.values[$1 * 2 + d]) }
                XCTAssertEqual(Double(out[(t * 2 + h) * 2 + d]), expected, accuracy: 1e-5, "t \(t) h \(h)")
            }
        }
    }

    func testAttentionWithCachedKeys() {
        // 2 new queries over 5 keys: the queries sit at positions 3 and 4.
        let q = randomTensor([1, 2, 2, 4], seed: 18), k = randomTensor([1, 5, 1, 4], seed: 19), v = randomTensor([1, 5, 1, 4], seed: 20)
        checkGradients("attention (cache)", inputs: [q, k, v]) { attention($0[0], $0[1], $0[2]) }
        checkGradients("attention (cache, blocks)", inputs: [q, k, v]) { attention($0[0], $0[1], $0[2], rowBlock: 1) }
    }

    func testBackwardTwiceAccumulates() {
        let w = randomTensor([3, 4], seed: 21); w.requireGrad()
        let x = randomTensor([2, 4], seed: 22)
        sum(linear(x, w)).backward()
        let once = w.gradValues!
        sum(linear(x, w)).backward()
        for (a, b) in zip(w.gradValues!, once) { XCTAssertEqual(a, 2 * b, accuracy: 1e-5) }
    }

    func testReshapeSharesGradient() {
        let w = randomTensor([2, 6], seed: 23); w.requireGrad()
        sum(scale(w.reshaped([3, 4]), 2)).backward()
        XCTAssertEqual(w.gradValues!, [Float](repeating: 2, count: 12))
    }

    /// Views take their base's gradient buffer when the first gradient arrives, not when made:
    /// a forward pass holds no gradient buffers. Gradients through two views of one activation
    /// (rows and a reshape) and through the activation itself all land in its buffer.
    func testViewGradientBufferIsTakenInTheBackwardPass() {
        let w = randomTensor([4, 3], seed: 25); w.requireGrad()
        let h = scale(w, 3)
        let top = h.rows(0..<2).reshaped([6]), whole = h.reshaped([2, 6])
        XCTAssertNil(h.gradStorage, "a view made in the forward pass allocates no gradient buffer")
        XCTAssertNil(top.gradStorage)
        let loss = add(add(sum(scale(top, 2)), sum(whole)), sum(h))
        loss.backward()
        // d loss / d h = 2 on the first two rows (top) + 1 (whole) + 1 (h itself); d h / d w = 3.
        XCTAssertEqual(w.gradValues!, [Float](repeating: 12, count: 6) + [Float](repeating: 6, count: 6))
    }

    func testNoGraphWithoutGrad() {
        let w = randomTensor([3, 3], seed: 24); w.requireGrad()
        let y = GradMode.withoutGrad { matmul(w, w) }
        XCTAssertFalse(y.requiresGrad)
    }

    func testLoRALinear() {
        let x = randomTensor([2, 3, 5], seed: 40), w = randomTensor([7, 5], seed: 41), bias = randomTensor([7], seed: 42)
        let a = randomTensor([2, 5], seed: 43), b = randomTensor([7, 2], seed: 44), d = randomTensor([2, 3, 5], seed: 45)
        checkGradients("loraLinear", inputs: [x, w, bias, a, b]) { loraLinear($0[0], $0[1], $0[2], a: $0[3], b: $0[4], scale: 1.5) }
        checkGradients("loraLinear low-rank input", inputs: [x, w, a, b, d]) {
            loraLinear($0[0], $0[1], nil, a: $0[2], b: $0[3], scale: 0.7, lowRankInput: $0[4])
        }
        // The same numbers as the composition of plain ops.
        let fused = GradMode.withoutGrad { loraLinear(x, w, bias, a: a, b: b, scale: 1.5, lowRankInput: d) }
        let plain = GradMode.withoutGrad { add(linear(x, w, bias), scale(linear(linear(d, a), b), 1.5)) }
        XCTAssertLessThan(maxAbsDiff(fused.values, plain.values), 1e-5)
    }

    func testLoRALinearFrozenBaseHasNoGradient() {
        let x = randomTensor([4, 5], seed: 46), w = randomTensor([3, 5], seed: 47)
        let a = randomTensor([2, 5], seed: 48), b = randomTensor([3, 2], seed: 49)
        a.requireGrad(); b.requireGrad()
        sum(loraLinear(x, w, nil, a: a, b: b, scale: 2)).backward()
        XCTAssertNil(w.gradStorage, "a frozen base weight gets no gradient buffer")
        XCTAssertNil(x.gradStorage)
        XCTAssertNotNil(a.gradValues)
        XCTAssertNotNil(b.gradValues)
    }

    func testDropout() {
        let x = randomTensor([3, 7], seed: 50)
        checkGradients("dropout", inputs: [x]) { var rng = SeededRandom(seed: 5); return dropout($0[0], p: 0.3, rng: &rng) }
        var rng = SeededRandom(seed: 5)
        let y = GradMode.withoutGrad { dropout(x, p: 0.3, rng: &rng) }
        for (xi, yi) in zip(x.values, y.values) { XCTAssertTrue(yi == 0 || abs(yi - xi / 0.7) < 1e-6) }
        XCTAssertTrue(y.values.contains(0) && y.values.contains { $0 != 0 })
    }
}
