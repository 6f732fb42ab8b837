import Foundation
import GroveTestSupport
import XCTest
@testable import GroveTensor
@testable import GroveTrain

/// The GRPO loss, its gradient and its metrics against TRL 1.16's own `_compute_loss`, and the
/// group advantages against TRL's (`Tests/Fixtures/shared/grpo_*.json`).
final class GRPOMathTests: XCTestCase {
    func json(_ name: String) throws -> [String: Any] { try Fixtures.json(Fixtures.publicDir.appendingPathComponent(name)) }

    func testLossGradientAndMetricsMatchTRL() throws {
        let fixture = try json("grpo_loss.json")
        let inputs = fixture["inputs"] as! [String: Any]
        let B = inputs["B"] as! Int, T = inputs["T"] as! Int
        func flat(_ key: String) -> [Float] { (inputs[key] as! [[Double]]).flatMap { $0 }.map(Float.init) }
        let mask = (inputs["completion_mask"] as! [[Int]]).flatMap { $0 }.map { $0 == 1 }
        let advantages = (inputs["advantages"] as! [Double]).map(Float.init)
        for c in fixture["cases"] as! [[String: Any]] {
            let config = c["config"] as! [String: Any]
            XCTAssertEqual(config["loss_type"] as? String, "grpo")
            let logp = Tensor(flat("per_token_logps"), shape: [B * T], requiresGrad: true)
            let (loss, metrics) = grpoLoss(logp: logp, old: flat("old_per_token_logps"), ref: flat("ref_per_token_logps"),
                                           advantages: advantages, mask: mask, batch: B,
                                           config: GRPOLossConfig(beta: config["beta"] as! Double, epsilonLow: config["epsilon"] as! Double,
                                                                  aggregation: .perSequence))
            XCTAssertEqual(Double(loss.item), c["loss"] as! Double, accuracy: 1e-6)
            loss.backward()
            let reference = (c["grad_per_token_logps"] as! [[Double]]).flatMap { $0 }
            for (a, b) in zip(logp.gradValues!, reference) { XCTAssertEqual(Double(a), b, accuracy: 1e-7) }
            let m = c["metrics"] as! [String: Double]
            XCTAssertEqual(metrics.kl, m["kl"]!, accuracy: 1e-6)
            XCTAssertEqual(metrics.clipLowMean, m["clip_ratio/low_mean"]!, accuracy: 1e-6)
            XCTAssertEqual(metrics.clipHighMean, m["clip_ratio/high_mean"]!, accuracy: 1e-6)
            XCTAssertEqual(metrics.clipRegionMean, m["clip_ratio/region_mean"]!, accuracy: 1e-6)
            XCTAssertEqual(metrics.clipLowMin, m["clip_ratio/low_min"]!, accuracy: 1e-6)
            XCTAssertEqual(metrics.clipHighMax, m["clip_ratio/high_max"]!, accuracy: 1e-6)
        }
    }

    /// Every aggregation and clip/β setting, against TRL's `_compute_loss` run on the same inputs
    /// (Tests/Fixtures/grpo_loss_variants.json, made by make_grpo_variants.py).
    func testEveryVariantMatchesTRL() throws {
        let inputs = try json("grpo_loss.json")["inputs"] as! [String: Any]
        let B = inputs["B"] as! Int, T = inputs["T"] as! Int
        func flat(_ key: String) -> [Float] { (inputs[key] as! [[Double]]).flatMap { $0 }.map(Float.init) }
        let mask = (inputs["completion_mask"] as! [[Int]]).flatMap { $0 }.map { $0 == 1 }
        let variants = try Fixtures.json(Fixtures.local.appendingPathComponent("grpo_loss_variants.json"))
        for c in variants["cases"] as! [[String: Any]] {
            let config = c["config"] as! [String: Any]
            let aggregation: LossAggregation
            switch config["loss_type"] as! String {
            case "grpo": aggregation = .perSequence
            case "bnpo", "dapo": aggregation = .perToken
            default: aggregation = .constantLength(inputs["max_completion_length"] as! Int)
            }
            let logp = Tensor(flat("per_token_logps"), shape: [B * T], requiresGrad: true)
            let (loss, metrics) = grpoLoss(logp: logp, old: flat("old_per_token_logps"), ref: flat("ref_per_token_logps"),
                                           advantages: (inputs["advantages"] as! [Double]).map(Float.init), mask: mask, batch: B,
                                           config: GRPOLossConfig(beta: config["beta"] as! Double, epsilonLow: config["epsilon"] as! Double,
                                                                  epsilonHigh: config["epsilon_high"] as? Double, aggregation: aggregation))
            XCTAssertEqual(Double(loss.item), c["loss"] as! Double, accuracy: 1e-6, "\(config)")
            loss.backward()
            for (a, b) in zip(logp.gradValues!, (c["grad_per_token_logps"] as! [[Double]]).flatMap { $0 }) {
                XCTAssertEqual(Double(a), b, accuracy: 1e-7, "\(config)")
            }
            let m = c["metrics"] as! [String: Double]
            if let kl = m["kl"] { XCTAssertEqual(metrics.kl, kl, accuracy: 1e-6) }
            XCTAssertEqual(metrics.clipRegionMean, m["clip_ratio/region_mean"]!, accuracy: 1e-6, "\(config)")
        }
    }

    /// The fixture's rows fed as two micro-batches, with the whole batch's normaliser: the two
    /// losses add up to the whole batch's loss, the gradients are the same, the metrics merge.
    func testMicroBatchesAddUpToTheWholeBatch() throws {
        let inputs = try json("grpo_loss.json")["inputs"] as! [String: Any]
        let B = inputs["B"] as! Int, T = inputs["T"] as! Int
        func flat(_ key: String) -> [Float] { (inputs[key] as! [[Double]]).flatMap { $0 }.map(Float.init) }
        let mask = (inputs["completion_mask"] as! [[Int]]).flatMap { $0 }.map { $0 == 1 }
        let advantages = (inputs["advantages"] as! [Double]).map(Float.init)
        let (lp, old, ref) = (flat("per_token_logps"), flat("old_per_token_logps").map { $0 + 0.1 }, flat("ref_per_token_logps"))
        XCTAssertGreaterThan(B, 2)
        for aggregation in [LossAggregation.perSequence, .perToken, .constantLength(T)] {
            let config = GRPOLossConfig(beta: 0.04, epsilonLow: 0.2, epsilonHigh: 0.28, aggregation: aggregation)
            let whole = Tensor(lp, shape: [B * T], requiresGrad: true)
            let (loss, metrics) = grpoLoss(logp: whole, old: old, ref: ref, advantages: advantages, mask: mask, batch: B, config: config)
            loss.backward()
            let normalizer = LossNormalizer(sequences: B, tokens: mask.filter { $0 }.count)
            var sum = 0.0, merged = GRPOLossMetrics(), grads: [Float] = []
            for rows in [0..<1, 1..<B] {
                let span = rows.lowerBound * T..<rows.upperBound * T
                let part = Tensor(Array(lp[span]), shape: [span.count], requiresGrad: true)
                let (l, m) = grpoLoss(logp: part, old: Array(old[span]), ref: Array(ref[span]), advantages: Array(advantages[rows]),
                                      mask: Array(mask[span]), batch: rows.count, config: config, normalizer: normalizer)
                l.backward()
                sum += Double(l.item); merged.merge(m); grads += part.gradValues!
            }
            XCTAssertEqual(sum, Double(loss.item), accuracy: 1e-6, "\(aggregation)")
            for (a, b) in zip(grads, whole.gradValues!) { XCTAssertEqual(a, b, accuracy: 1e-7, "\(aggregation)") }
            XCTAssertEqual(merged.kl, metrics.kl, accuracy: 1e-9)
            XCTAssertEqual(merged.clipRegionMean, metrics.clipRegionMean, accuracy: 1e-12)
            XCTAssertEqual(merged.clipLowMin, metrics.clipLowMin, accuracy: 1e-12)
            XCTAssertEqual(merged.clipHighMax, metrics.clipHighMax, accuracy: 1e-12)
        }
    }

    /// With β = 0 a row whose advantage is 0 has zero loss and zero gradient for any ratio, so the
    /// trainer leaves it out of the passes (it still counts in the normaliser).
    func testZeroAdvantageRowsAddNothingWithoutKL() {
        let lp: [Float] = [-1.0, -0.2, -2.0, -0.4, -1.3, -0.7], old: [Float] = [-1.4, -0.1, -1.0, -0.9, -1.3, -0.2]
        let mask = [true, true, true, true, true, false]
        for aggregation in [LossAggregation.perSequence, .perToken, .constantLength(4)] {
            let config = GRPOLossConfig(beta: 0, epsilonLow: 0.2, epsilonHigh: 0.28, aggregation: aggregation)
            let all = Tensor(lp, shape: [6], requiresGrad: true)
            let (loss, _) = grpoLoss(logp: all, old: old, ref: nil, advantages: [0, 1.5, -0.5], mask: mask, batch: 3, config: config)
            loss.backward()
            XCTAssertEqual(Array(all.gradValues![0..<2]), [0, 0])
            let kept = Tensor(Array(lp[2...]), shape: [4], requiresGrad: true)
            let (part, _) = grpoLoss(logp: kept, old: Array(old[2...]), ref: nil, advantages: [1.5, -0.5], mask: Array(mask[2...]),
                                     batch: 2, config: config, normalizer: LossNormalizer(sequences: 3, tokens: 5))
            part.backward()
            XCTAssertEqual(part.item, loss.item, accuracy: 1e-7, "\(aggregation)")
            XCTAssertEqual(kept.gradValues!, Array(all.gradValues![2...]), "\(aggregation)")
        }
    }

    func testAdvantagesMatchTRL() throws {
        let fixture = try json("grpo_advantages.json")
        let perFunction = (fixture["rewards_per_func"] as! [[Any]]).map { $0.map { $0 as? Double } }
        let totals = GroupAdvantage.totalRewards(perFunction, weights: fixture["reward_weights"] as! [Double])
        for c in fixture["cases"] as! [[String: Any]] {
            XCTAssertEqual(c["scale_rewards"] as? String, "group")
            let ours = GroupAdvantage.compute(totals, groupSize: fixture["num_generations"] as! Int, scaling: .group)
            for (a, b) in zip(ours, c["advantages"] as! [Double]) { XCTAssertEqual(a, b, accuracy: 1e-6) }  // TRL sums in float32
        }
    }

    func testEqualRewardsGiveZeroNotNaN() {
        for scaling in [AdvantageScaling.group, .batch, .none] {
            XCTAssertEqual(GroupAdvantage.compute([1, 1, 1, 1, nil, nil, nil, nil], groupSize: 4, scaling: scaling), [0, 0, 0, 0, 0, 0, 0, 0])
        }
        XCTAssertEqual(GroupAdvantage.compute([1, 3], groupSize: 2, scaling: .none), [-1, 1])
    }

    /// The largest totals rewards can give (|r| ≤ 1e15 per function, `RewardOutput.maxMagnitude`,
    /// times weights up to 1e6, a few functions) keep their signal: their squares stay far from
    /// overflow, so the plain formula, the one torch.std and TRL use, stays exact enough.
    func testLargestAcceptedRewardsKeepTheirSignal() {
        let r = 8 * 1e15 * 1e6
        let advantages = GroupAdvantage.compute([r, -r, r / 2, 0], groupSize: 2, scaling: .group)
        for (a, b) in zip(advantages, [0.7071, -0.7071, 0.7071, -0.7071]) { XCTAssertEqual(a, b, accuracy: 1e-4) }
    }

    /// With the policy equal to the sampling policy (μ = 1), ρ = 1 and the gradient is −A·w per token.
    func testRatioOneGivesPolicyGradient() {
        let logp = Tensor([-1, -2, -0.5, -3], shape: [4], requiresGrad: true)
        let (loss, _) = grpoLoss(logp: logp, old: logp.values, ref: nil, advantages: [2, -1], mask: [true, true, true, false],
                                 batch: 2, config: GRPOLossConfig(beta: 0, aggregation: .perToken))
        XCTAssertEqual(loss.item, -(2 + 2 - 1) / 3, accuracy: 1e-6)
        loss.backward()
        XCTAssertEqual(logp.gradValues!, [-2.0 / 3, -2.0 / 3, 1.0 / 3, 0].map { Float($0) })
    }

    /// A huge log-ratio stays finite in value and gradient (the bound before exp).
    func testExtremeLogRatiosStayFinite() {
        let logp = Tensor([0, -200], shape: [2], requiresGrad: true)
        let (loss, metrics) = grpoLoss(logp: logp, old: [-200, 0], ref: [-300, 100], advantages: [1, -1], mask: [true, true],
                                       batch: 2, config: GRPOLossConfig(beta: 0.04))
        loss.backward()
        XCTAssertTrue(loss.item.isFinite && metrics.kl.isFinite)
        XCTAssertTrue(logp.gradValues!.allSatisfy(\.isFinite))
    }

    /// Every aggregation against finite differences of the loss.
    func testGradientMatchesFiniteDifferences() {
        let old: [Float] = [-1.1, -0.9, -2.0, -0.4, -1.3, -0.7], ref: [Float] = [-1.0, -1.2, -1.8, -0.5, -1.1, -0.9]
        let mask = [true, true, false, true, true, true]
        for aggregation in [LossAggregation.perSequence, .perToken, .constantLength(5)] {
            let config = GRPOLossConfig(beta: 0.1, epsilonLow: 0.2, epsilonHigh: 0.28, aggregation: aggregation)
            let x: [Float] = [-1.0, -1.05, -1.9, -0.3, -1.6, -0.75]
            let logp = Tensor(x, shape: [6], requiresGrad: true)
            grpoLoss(logp: logp, old: old, ref: ref, advantages: [0.7, -1.2], mask: mask, batch: 2, config: config).loss.backward()
            for i in 0..<6 {
                var up = x, down = x
                up[i] += 1e-3; down[i] -= 1e-3
                let f = { (v: [Float]) in Double(grpoLoss(logp: Tensor(v, shape: [6]), old: old, ref: ref, advantages: [0.7, -1.2], mask: mask,
                                                          batch: 2, config: config).loss.item) }
                XCTAssertEqual(Double(logp.gradValues![i]), (f(up) - f(down)) / 2e-3, accuracy: 2e-3, "\(aggregation) token \(i)")
            }
        }
    }
}
