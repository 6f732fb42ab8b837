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

    // MARK: bfloat16 moments

    /// The stored moments of `opt`, as float32 (exact for bfloat16 storage).
    func moments(_ opt: AdamW) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: opt.state().map { ($0.0, $0.1.values) })
    }

    /// The bfloat16 kernel (optimizer.c) against a Swift twin of it, bit for bit: 1,003 elements
    /// (full vectors and a tail), three steps, the same formula in Float (the kernel fuses no
    /// multiply-adds) and the same hash of (key, step, parameter, element) for the rounding.
    func testAdamWBFloat16KernelAgainstPlainLoop() {
        func lowbias32(_ x: UInt32) -> UInt32 {
            var x = x
            x ^= x >> 16; x &*= 0x7feb352d; x ^= x >> 15; x &*= 0x846ca68b; x ^= x >> 16
            return x
        }
        func roundStochastically(_ x: Float, _ random: UInt32) -> Float { Float(bitPattern: (x.bitPattern &+ random) & 0xFFFF_0000) }
        var rng = SeededRandom(seed: 11)
        let n = 1003, lr: Float = 0.01, b1: Float = 0.9, b2: Float = 0.95, eps: Float = 1e-8, decay: Float = 0.1
        let p = Tensor.randn([n], std: 1, rng: &rng, requiresGrad: true)
        var w = p.values, m = [Float](repeating: 0, count: n), v = m
        let opt = AdamW(parameters: [(Tensor(zeros: [1]), decay: false), (p, decay: true)], beta1: b1, beta2: b2, eps: eps,
                        weightDecay: decay, momentStorage: .bfloat16)
        for t in 1...3 {
            let g = Tensor.randn([n], std: 0.1, rng: &rng).values
            for i in 0..<n { p.grad[i] = g[i] }
            opt.step(lr: lr)
            let c1 = 1 - powf(b1, Float(t)), c2 = 1 - powf(b2, Float(t))
            var keys = SeededRandom(seed: AdamW.roundingKey, streams: [UInt64(t), 1])  // parameter 1
            let key = UInt32(truncatingIfNeeded: keys.next())
            for i in 0..<n {
                let mi = b1 * m[i] + (1 - b1) * g[i]
                let vi = b2 * v[i] + (1 - b2) * g[i] * g[i]
                w[i] = w[i] * (1 - lr * decay) - lr * (mi / c1) / ((vi / c2).squareRoot() + eps)
                let random = lowbias32(UInt32(i) &+ key)
                m[i] = roundStochastically(mi, random & 0xFFFF)
                v[i] = roundStochastically(vi, random >> 16)
            }
        }
        XCTAssertEqual(p.values, w)
        XCTAssertEqual(moments(opt)["m.1"], m)
        XCTAssertEqual(moments(opt)["v.1"], v)
        XCTAssertEqual(moments(opt)["m.0"], [0], "a parameter without a gradient is skipped")
    }

    /// Stochastic rounding is unbiased: with β1 = β2 = 0 the stored moments are g and g² rounded
    /// to bfloat16, so the share of elements rounded up is the dropped fraction of the value,
    /// within 4 standard errors, for positive and negative values and for v; each step draws new
    /// bits; and a value bfloat16 holds exactly is stored exactly.
    func testBFloat16RoundingIsUnbiasedAndExactOnRepresentableValues() {
        let n = 1 << 16, steps = 4
        let x = Float(1 + 1.0 / 384)  // a third of the way from bf16's 1 to 1 + 2⁻⁷
        let p = Tensor(zeros: [n], requiresGrad: true)
        for i in 0..<n { p.grad[i] = i % 2 == 0 ? x : -x }
        let opt = AdamW(parameters: [(p, decay: false)], beta1: 0, beta2: 0, momentStorage: .bfloat16)
        let low: Float = 1, high = 1 + Float(1.0 / 128)  // the bf16 neighbours of x and of x²
        var up = (positive: 0, negative: 0, v: 0), others = 0, firstStep: [Float] = [], changed = 0
        for step in 0..<steps {
            opt.step(lr: 0)
            let stored = moments(opt), m = stored["m.0"]!, v = stored["v.0"]!
            for i in 0..<n {
                if abs(m[i]) == high { if i % 2 == 0 { up.positive += 1 } else { up.negative += 1 } }
                if v[i] == high { up.v += 1 }
                if ![low, high].contains(abs(m[i])) || ![low, high].contains(v[i]) || (m[i] < 0) != (i % 2 == 1) { others += 1 }
            }
            if step == 0 { firstStep = m } else if step == 1 { changed = zip(firstStep, m).filter { $0 != $1 }.count }
        }
        XCTAssertEqual(others, 0, "moments other than the two neighbours (with g's sign)")
        func check(_ count: Int, samples: Int, value: Float) {
            let fraction = Double(value.bitPattern & 0xFFFF) / 65536
            let standardError = (fraction * (1 - fraction) / Double(samples)).squareRoot()
            XCTAssertEqual(Double(count) / Double(samples), fraction, accuracy: 4 * standardError, "rounded up")
        }
        check(up.positive, samples: steps * n / 2, value: x)
        check(up.negative, samples: steps * n / 2, value: x)
        check(up.v, samples: steps * n, value: x * x)
        // Independent bits in step 2: an element rounds the other way with probability 2f(1 − f) = 4/9.
        XCTAssertEqual(Double(changed) / Double(n), 4.0 / 9, accuracy: 0.01)

        var rng = SeededRandom(seed: 5)
        let exact = (0..<n).map { _ in Float(bitPattern: Float(rng.normal() * 100).bitPattern & 0xFFFF_0000) }
        for i in 0..<n { p.grad[i] = exact[i] }
        for _ in 0..<2 {
            opt.step(lr: 0)
            XCTAssertEqual(moments(opt)["m.0"], exact)
        }
    }

    /// With zero gradients v decays as β2ᵗ in expectation. Under round-to-nearest a bfloat16 v
    /// would never move with β2 0.999 (the step, 0.1 %, is under half an ulp); stochastically
    /// rounded, its mean over 8,192 elements follows the float32 optimizer's v within 1 % over
    /// 1,000 steps (per element the rounding adds ≲ 0.4 % noise a step; the mean cuts it 90-fold).
    func testBFloat16SecondMomentDecaysLikeFloat32() {
        let n = 8192, beta2: Float = 0.999
        func finalV(_ storage: AdamW.MomentStorage) -> [Float] {
            let p = Tensor(zeros: [n], requiresGrad: true)
            let opt = AdamW(parameters: [(p, decay: false)], beta2: beta2, weightDecay: 0, momentStorage: storage)
            for i in 0..<n { p.grad[i] = 1 }
            opt.step(lr: 0)
            for i in 0..<n { p.grad[i] = 0 }
            for _ in 1..<1000 { opt.step(lr: 0) }
            return moments(opt)["v.0"]!
        }
        let exact = finalV(.float32)[0], rounded = finalV(.bfloat16)
        XCTAssertEqual(Double(exact), 0.001 * pow(0.999, 999), accuracy: 1e-7)
        let start = Float(bitPattern: UInt32(bfloat16Bits(0.001)) << 16)
        XCTAssertEqual(bfloat16Bits(beta2 * start), bfloat16Bits(start), "round-to-nearest would leave v where it is")
        let mean = rounded.reduce(0, +) / Float(n)
        XCTAssertEqual(mean / exact, 1, accuracy: 0.01, "mean bf16 v \(mean), float32 v \(exact)")
    }

    /// The rounding bits hash the element's index in its parameter, not in a thread's chunk:
    /// 1 and 2 threads give the same weights and moments, bit for bit (100,003 elements: two
    /// chunks, split off a vector boundary).
    func testBFloat16MomentsAreTheSameOnOneAndTwoThreads() {
        func train(threads: Int) -> (weights: [Float], state: [String: [Float]]) {
            let saved = Parallel.threads
            defer { Parallel.threads = saved }
            Parallel.threads = threads
            var rng = SeededRandom(seed: 3)
            let a = Tensor.randn([100_003], std: 1, rng: &rng, requiresGrad: true), b = Tensor.randn([7], std: 1, rng: &rng, requiresGrad: true)
            let opt = AdamW(parameters: [(a, decay: true), (b, decay: false)], momentStorage: .bfloat16)
            for _ in 0..<4 {
                for t in [a, b] { for i in 0..<t.count { t.grad[i] = rng.normal() * 0.01 } }
                opt.step(lr: 1e-3)
            }
            return (a.values + b.values, moments(opt))
        }
        let one = train(threads: 1), two = train(threads: 2)
        XCTAssertEqual(one.weights, two.weights)
        XCTAssertEqual(one.state, two.state)
    }

    /// Checkpoints hold float32 either way, so either kind of optimizer loads either kind of
    /// state: bfloat16 moments into float32 exactly, float32 moments into bfloat16 rounded to nearest.
    func testStateLoadsAcrossMomentStorages() throws {
        let p = Tensor([0.3, -1.7, 2.2], shape: [3], requiresGrad: true)
        for (i, g) in [0.1234567, -0.7654321, 3.3333333].enumerated() { p.grad[i] = Float(g) }
        let float32 = AdamW(parameters: [(p, decay: false)])
        float32.step(lr: 0)
        let exact = moments(float32)
        let bf16 = AdamW(parameters: [(Tensor(zeros: [3]), decay: false)], momentStorage: .bfloat16)
        try bf16.loadState(Dictionary(uniqueKeysWithValues: float32.state()))
        XCTAssertEqual(bf16.stepCount, 1)
        let rounded = moments(bf16)
        for key in ["m.0", "v.0"] {
            XCTAssertEqual(rounded[key], exact[key]!.map { Float(bitPattern: UInt32(bfloat16Bits($0)) << 16) }, key)
            XCTAssertNotEqual(rounded[key], exact[key], "\(key): these values are not bfloat16 numbers")
        }
        let back = AdamW(parameters: [(Tensor(zeros: [3]), decay: false)])
        try back.loadState(Dictionary(uniqueKeysWithValues: bf16.state()))
        XCTAssertEqual(moments(back), rounded)
        XCTAssertThrowsError(try AdamW(parameters: [(Tensor(zeros: [4]), decay: false)], momentStorage: .bfloat16)
            .loadState(Dictionary(uniqueKeysWithValues: bf16.state())))
    }

    /// `writeState` (checkpoints) writes what `state()` holds, with either storage: bfloat16
    /// moments converted piece by piece through one reused buffer.
    func testWriteStateWritesTheState() throws {
        for storage in AdamW.MomentStorage.allCases {
            var rng = SeededRandom(seed: 9)
            let a = Tensor.randn([5, 3], rng: &rng, requiresGrad: true), b = Tensor.randn([4], rng: &rng, requiresGrad: true)
            let opt = AdamW(parameters: [(a, decay: true), (b, decay: false)], momentStorage: storage)
            for _ in 0..<2 {
                for t in [a, b] { for i in 0..<t.count { t.grad[i] = rng.normal() } }
                opt.step(lr: 0.1)
            }
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("grove-adamw-\(UUID().uuidString).safetensors")
            defer { try? FileManager.default.removeItem(at: url) }
            try opt.writeState(to: url)
            let written = try SafetensorsFile.read(url)
            XCTAssertEqual(written.map(\.0), ["m.0", "m.1", "step", "v.0", "v.1"], "\(storage)")
            XCTAssertEqual(Dictionary(uniqueKeysWithValues: written.map { ($0.0, $0.1.values) }), moments(opt), "\(storage)")
            XCTAssertEqual(written.first { $0.0 == "m.0" }?.1.shape, [5, 3])
        }
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
