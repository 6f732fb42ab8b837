import Foundation
import XCTest
@testable import GroveTensor

final class OptimizerTests: XCTestCase {
    /// Two AdamW steps on p = [1, −2, 0.5] with g = [0.1, −0.2, 0.3] then [0.3, 0.1, −0.2],
    /// lr 0.1, β (0.9, 0.95), ε 1e-8, λ 0.1 — the same as torch.optim.AdamW
    /// (values from `torch.optim.AdamW([p], lr=0.1, betas=(0.9, 0.95), weight_decay=0.1)`, torch 2.15).
    func testAdamWMatchesTorch() {
        let p = Tensor([1, -2, 0.5], shape: [3], requiresGrad: true)
        let opt = AdamW(parameters: [(p, decay: true)], beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1)
        for g in [[0.1, -0.2, 0.3], [0.3, 0.1, -0.2]] as [[Float]] {
            for i in 0..<3 { p.grad[i] = g[i] }
            opt.step(lr: 0.1)
        }
        let expected: [Float] = [0.79023075, -1.8343630, 0.37652755]
        for (a, b) in zip(p.values, expected) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        XCTAssertEqual(opt.stepCount, 2)
    }

    /// The vectorised update (optimizer.c) on 1,003 elements (full vectors and a tail), three
    /// steps, against the formula in Double, element by element.
    func testAdamWKernelAgainstPlainLoop() {
        var rng = SeededRandom(seed: 7)
        let n = 1003, lr: Float = 0.01, b1 = 0.9, b2 = 0.95, eps = 1e-8, decay = 0.1
        let p = Tensor.randn([n], std: 1, rng: &rng, requiresGrad: true)
        var w = p.values.map(Double.init), m = [Double](repeating: 0, count: n), v = m
        let opt = AdamW(parameters: [(p, decay: true)], beta1: Float(b1), beta2: Float(b2), eps: Float(eps), weightDecay: Float(decay))
        for t in 1...3 {
            let g = Tensor.randn([n], std: 0.1, rng: &rng).values
            for i in 0..<n { p.grad[i] = g[i] }
            opt.step(lr: lr)
            let c1 = 1 - pow(b1, Double(t)), c2 = 1 - pow(b2, Double(t))
            for i in 0..<n {
                let gi = Double(g[i])
                m[i] = b1 * m[i] + (1 - b1) * gi
                v[i] = b2 * v[i] + (1 - b2) * gi * gi
                w[i] = w[i] * (1 - Double(lr) * decay) - Double(lr) * (m[i] / c1) / ((v[i] / c2).squareRoot() + eps)
            }
        }
        for (a, b) in zip(p.values, w) { XCTAssertEqual(Double(a), b, accuracy: 1e-6) }
    }

    func testNoDecayGroupAndStateRoundTrip() throws {
        let p = Tensor([1, 1], shape: [2], requiresGrad: true)
        let opt = AdamW(parameters: [(p, decay: false)], weightDecay: 0.5)
        p.grad[0] = 0; p.grad[1] = 0
        opt.step(lr: 0.1)
        XCTAssertEqual(p.values, [1, 1], "no decay and zero gradient leave the weights alone")
        let other = AdamW(parameters: [(Tensor(zeros: [2]), decay: false)])
        try other.loadState(Dictionary(uniqueKeysWithValues: opt.state()))
        XCTAssertEqual(other.stepCount, 1)
        XCTAssertThrowsError(try AdamW(parameters: [(Tensor(zeros: [3]), decay: false)]).loadState(Dictionary(uniqueKeysWithValues: opt.state())))
    }

    func testSchedules() {
        let cosine = LearningRateSchedule.warmupCosine(warmupSteps: 10, totalSteps: 110, minRatio: 0)
        XCTAssertEqual(cosine.lr(step: 0, base: 1), 0)
        XCTAssertEqual(cosine.lr(step: 5, base: 1), 0.5)
        XCTAssertEqual(cosine.lr(step: 10, base: 1), 1)
        XCTAssertEqual(cosine.lr(step: 60, base: 1), 0.5, accuracy: 1e-6)
        XCTAssertEqual(cosine.lr(step: 110, base: 1), 0, accuracy: 1e-6)
        let floor = LearningRateSchedule.warmupCosine(warmupSteps: 0, totalSteps: 100, minRatio: 0.1)
        XCTAssertEqual(floor.lr(step: 100, base: 2), 0.2, accuracy: 1e-6)
        let stepDecay = LearningRateSchedule.warmupStep(warmupSteps: 2, stepSize: 3, gamma: 0.5)
        XCTAssertEqual(stepDecay.lr(step: 1, base: 1), 0.5)
        XCTAssertEqual(stepDecay.lr(step: 4, base: 1), 1)
        XCTAssertEqual(stepDecay.lr(step: 5, base: 1), 0.5)
        XCTAssertEqual(LearningRateSchedule.constant.lr(step: 99, base: 3), 3)
    }

    /// `schedule: linear`: HF's get_linear_schedule_with_warmup, step / warmup during the warm-up,
    /// then (total − step) / (total − warmup), 0 from totalSteps on.
    func testWarmupLinearSchedule() {
        let linear = LearningRateSchedule.warmupLinear(warmupSteps: 4, totalSteps: 12)
        XCTAssertEqual([0, 1, 2, 4, 6, 8, 11, 12, 15].map { linear.lr(step: $0, base: 2) }, [0, 0.5, 1, 2, 1.5, 1, 0.25, 0, 0])
        let noWarmup = LearningRateSchedule.warmupLinear(warmupSteps: 0, totalSteps: 10)
        for (step, expected) in [(0, 1.0), (5, 0.5), (9, 0.1), (10, 0)] as [(Int, Float)] {
            XCTAssertEqual(noWarmup.lr(step: step, base: 1), expected, accuracy: 1e-6, "step \(step)")
        }
        XCTAssertEqual(linear.stretched(from: 12, to: 24), .warmupLinear(warmupSteps: 8, totalSteps: 24))
    }

    func testClipGradNorm() {
        let a = Tensor([0, 0], shape: [2], requiresGrad: true), b = Tensor([0], shape: [1], requiresGrad: true)
        a.grad[0] = 3; a.grad[1] = 0; b.grad[0] = 4
        XCTAssertEqual(clipGradNorm([a, b], maxNorm: 1), 5)
        XCTAssertEqual(a.gradValues![0], 3 / (5 + 1e-6), accuracy: 1e-6)
        XCTAssertEqual(b.gradValues![0], 4 / (5 + 1e-6), accuracy: 1e-6)
        let big = Tensor(zeros: [1001], requiresGrad: true)  // full vectors and a tail (optimizer.c)
        for i in 0..<1001 { big.grad[i] = Float(i % 7) - 3 }
        let expected = (0..<1001).reduce(0.0) { $0 + pow(Double($1 % 7) - 3, 2) }.squareRoot()
        XCTAssertEqual(Double(clipGradNorm([big], maxNorm: 1e9)), expected, accuracy: 1e-4)
        a.grad[0] = .nan
        XCTAssertTrue(clipGradNorm([a, b], maxNorm: 1).isNaN)
    }
}
