import XCTest
@testable import GroveTensor

/// Centred finite differences for one op, projected on a fixed random cotangent c:
/// L(x) = Σ c ⊙ f(x). A plain `.sum()` would hide transposes and zero the gradient of
/// anything that sums to a constant (softmax), so every check uses a random c.
///
/// For each input and each element i: (L(x + h·eᵢ) − L(x − h·eᵢ)) / 2h must match the
/// gradient backward() accumulated, within atol + rtol·|numeric|.
func checkGradients(_ name: String, inputs: [Tensor], h: Float = 1e-2, atol: Float = 2e-3, rtol: Float = 1e-2,
                    seed: UInt64 = 7, file: StaticString = #filePath, line: UInt = #line,
                    _ f: ([Tensor]) -> Tensor) {
    for x in inputs { x.requireGrad(); x.dropGrad() }
    let probe = GradMode.withoutGrad { f(inputs) }
    var rng = SeededRandom(seed: seed)
    let cotangent = Tensor.randn(probe.shape, rng: &rng)

    func loss() -> Double {
        let y = GradMode.withoutGrad { f(inputs) }
        var total = 0.0
        for i in 0..<y.count { total += Double(y.data[i]) * Double(cotangent.data[i]) }
        return total
    }

    sum(mul(f(inputs), cotangent)).backward()
    for (j, x) in inputs.enumerated() {
        let analytic = x.gradValues ?? [Float](repeating: 0, count: x.count)
        for i in 0..<x.count {
            let saved = x.data[i]
            x.data[i] = saved + h; let up = loss()
            x.data[i] = saved - h; let down = loss()
            x.data[i] = saved
            let numeric = Float((up - down) / Double(2 * h))
            let err = abs(analytic[i] - numeric)
            if err > atol + rtol * abs(numeric) {
                XCTFail("\(name): input \(j) element \(i): backward \(analytic[i]) vs finite difference \(numeric)",
                        file: file, line: line)
                return
            }
        }
    }
}

/// Random tensor for tests.
func randomTensor(_ shape: [Int], seed: UInt64, std: Float = 1) -> Tensor {
    var rng = SeededRandom(seed: seed)
    return Tensor.randn(shape, std: std, rng: &rng)
}
