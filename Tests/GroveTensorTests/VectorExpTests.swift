import CGroveKernels
import XCTest

/// The vectorised exp kernels (vector_exp.c) against libm, element by element.
final class VectorExpTests: XCTestCase {
    /// Within 2 ulp of expf over the whole finite range, exact 0 / +inf / NaN at the edges.
    func testExpAgainstLibm() {
        var x: [Float] = stride(from: -87.0, through: 88.0, by: 0.0137).map { Float($0) }
        x += [0, -0.0, 1e-8, -1e-8, 0.3465736, -0.3465736]
        var out = [Float](repeating: 0, count: x.count)
        grove_exp(x, 0, &out, Int32(x.count))
        for (v, e) in zip(x, out) {
            let reference = expf(v)
            XCTAssertEqual(e, reference, accuracy: 2 * reference.ulp, "exp(\(v))")
        }
        let edges: [Float] = [-.infinity, -100, -87.5, 88.8, 100, .infinity, .nan]
        var edgeOut = [Float](repeating: 1, count: edges.count)
        grove_exp(edges, 0, &edgeOut, Int32(edges.count))
        XCTAssertEqual(Array(edgeOut.prefix(3)), [0, 0, 0])
        XCTAssertEqual(Array(edgeOut[3..<6]), [.infinity, .infinity, .infinity])
        XCTAssertTrue(edgeOut[6].isNaN, "NaN must survive exp")
    }

    /// The sum, log-sum-exp and the scaled subtraction agree with Double arithmetic; the
    /// lengths leave tails after the 16-wide blocks.
    func testReductionsAndSoftmaxGradientTerm() {
        for n in [1, 15, 17, 300, 2051] {
            let x = (0..<n).map { Float(sin(Double($0) * 0.7) * 6) }
            let shift: Float = 2.5
            var out = [Float](repeating: 0, count: n)
            let total = grove_exp_sum(x, shift, &out, Int32(n))
            let reference = x.reduce(0.0) { $0 + exp(Double($1 - shift)) }
            XCTAssertEqual(Double(total), reference, accuracy: 1e-5 * reference)
            // In place, as attention calls it: the same values and sum as into a separate array.
            var inPlace = x
            let inPlaceTotal = inPlace.withUnsafeMutableBufferPointer { grove_exp_sum($0.baseAddress, shift, $0.baseAddress, Int32(n)) }
            XCTAssertEqual(inPlace, out)
            XCTAssertEqual(inPlaceTotal, total)
            let lse = x.reduce(0.0) { $0 + exp(Double($1)) }
            XCTAssertEqual(Double(grove_log_sum_exp(x, Int32(n))), log(lse), accuracy: 1e-5 * max(1, abs(log(lse))))
            var d = [Float](repeating: 1, count: n)
            grove_sub_scaled_exp(&d, x, shift, 0.5, Int32(n))
            for i in 0..<n { XCTAssertEqual(Double(d[i]), 1 - 0.5 * exp(Double(x[i] - shift)), accuracy: 1e-5 * max(1, exp(Double(x[i] - shift)))) }
        }
        XCTAssertEqual(grove_log_sum_exp([-.infinity, -.infinity], 2), -.infinity)
    }
}
