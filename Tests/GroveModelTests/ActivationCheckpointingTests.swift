import Foundation
import XCTest
@testable import GroveModel
@testable import GroveTensor

/// `gradientCheckpointing`: the same loss and the same gradients as the recorded blocks, with and
/// without an adapter (and its dropout), and gradients that match finite differences.
final class ActivationCheckpointingTests: XCTestCase {
    let config = ModelConfig(vocabSize: 64, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 3,
                             numAttentionHeads: 4, numKeyValueHeads: 2, maxPositionEmbeddings: 64)
    let tokens: [Int32] = (0..<24).map { Int32(($0 * 37 + 5) % 64) }
    /// Two rows of 12, the second left-padded by 3: masked keys and shifted positions go through the recomputation.
    let mask: [Bool] = (0..<24).map { $0 < 12 || $0 >= 15 }

    /// Mean next-token NLL over the real tokens.
    func loss(_ model: Transformer) -> Tensor {
        var targets = [Int32](repeating: -1, count: tokens.count)
        for i in 0..<tokens.count - 1 where i % 12 != 11 && mask[i] { targets[i] = tokens[i + 1] }
        let logits = model.forward(tokens: tokens, batch: 2, attentionMask: mask)
        return scale(sum(tokenLogProbs(logits, targets: targets)), -1 / Float(targets.filter { $0 >= 0 }.count))
    }

    /// The loss and every trainable parameter's gradient after two accumulated backward passes.
    func gradients(_ model: Transformer, checkpointing: Bool) -> ([Float], [String: [Float]]) {
        model.gradientCheckpointing = checkpointing
        for p in model.parameters { p.zeroGrad() }
        model.seedDropout(step: 3)
        let losses = (0..<2).map { _ in
            let l = loss(model)
            l.backward()
            return l.item
        }
        return (losses, Dictionary(uniqueKeysWithValues: model.trainableParameters.map { ($0.0, $0.1.gradValues ?? []) }))
    }

    func assertSameGradients(_ model: Transformer, file: StaticString = #filePath, line: UInt = #line) {
        let (plainLoss, plain) = gradients(model, checkpointing: false)
        let (checkpointedLoss, checkpointed) = gradients(model, checkpointing: true)
        XCTAssertEqual(plainLoss, checkpointedLoss, file: file, line: line)
        XCTAssertEqual(Set(plain.keys), Set(checkpointed.keys), file: file, line: line)
        var worst: Float = 0
        for (name, g) in plain {
            XCTAssertEqual(g.count, checkpointed[name]!.count, name, file: file, line: line)
            XCTAssertFalse(g.isEmpty, "\(name) got no gradient", file: file, line: line)
            for (a, b) in zip(g, checkpointed[name]!) { worst = max(worst, abs(a - b)) }
        }
        print("activation checkpointing: max abs gradient diff \(worst) over \(plain.count) tensors")
        XCTAssertLessThanOrEqual(worst, 1e-6, file: file, line: line)
    }

    func testFullFineTuningGradientsUnchanged() {
        assertSameGradients(Transformer(config: config, seed: 1))
    }

    func testLoRAWithDropoutGradientsUnchanged() throws {
        let model = Transformer(config: config, seed: 2)
        model.addAdapter(try LoRAConfig(r: 4, alpha: 8, dropout: 0.25), seed: 5)
        // B starts at zero, which would leave A without gradient: make the adapter non-trivial.
        var rng = SeededRandom(seed: 9)
        for (_, p) in model.adapterParameters { p.copy(from: Tensor.randn(p.shape, std: 0.1, rng: &rng)) }
        assertSameGradients(model)
    }

    /// GRPO's shared-prompt batch (`hiddenStates(SharedPrefixBatch)`) is checkpointed too: its last
    /// block's output is recorded with the block's input and weights as parents, and the gradients
    /// are those of the recorded blocks.
    func testSharedPrefixBatchIsCheckpointed() {
        let model = Transformer(config: config, seed: 4)
        let batch = SharedPrefixBatch(prompts: [[3, 9, 27], [3, 9, 27], [5, 1]], suffixes: [[7, 8, 9, 10], [11], [12, 13]], pad: 0)
        var rng = SeededRandom(seed: 6)
        let rows = batch.prefixCount * batch.prefixLength + batch.suffixCount * batch.suffixLength
        let cotangent = Tensor.randn([rows, config.hiddenSize], rng: &rng)
        func run(_ checkpointing: Bool) -> (Float, [Float], Int) {
            model.gradientCheckpointing = checkpointing
            for p in model.parameters { p.dropGrad() }
            let hidden = model.hiddenStates(batch)
            let parents = hidden.parents.first!.parents.count  // the last block's output
            let loss = sum(mul(hidden, cotangent))
            loss.backward()
            return (loss.item, model.parameters.flatMap { $0.gradValues ?? [] }, parents)
        }
        let (plainLoss, plain, plainParents) = run(false), (loss, gradients, parents) = run(true)
        XCTAssertEqual(plainParents, 2)  // add(h, mlp)
        XCTAssertEqual(parents, 1 + model.layers[2].tensors.count)
        XCTAssertEqual(loss, plainLoss)
        XCTAssertEqual(gradients.count, plain.count)
        for (a, b) in zip(gradients, plain) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }

    /// Centred differences of the loss (computed in Double from float32 forwards) against the
    /// checkpointed backward, on a few elements of the embedding, a norm and the projections.
    func testMatchesFiniteDifferences() {
        let model = Transformer(config: config, seed: 3)
        model.gradientCheckpointing = true
        loss(model).backward()
        let layer = model.layers[1]
        let probes: [(String, Tensor)] = [("embed", model.embedTokens), ("norm", layer.inputLayernorm),
                                          ("q", layer.grouped.qProj.weight), ("q bias", layer.grouped.qProj.bias!), ("down", layer.dense.downProj.weight),
                                          ("layer 0 up", model.layers[0].dense.upProj.weight)]
        let h: Float = 1e-2
        for (name, p) in probes {
            let analytic = p.gradValues!
            for i in stride(from: 0, to: p.count, by: max(p.count / 7, 1)) {
                let saved = p.data[i]
                p.data[i] = saved + h; let up = Double(GradMode.withoutGrad { loss(model).item })
                p.data[i] = saved - h; let down = Double(GradMode.withoutGrad { loss(model).item })
                p.data[i] = saved
                let numeric = Float((up - down) / Double(2 * h))
                XCTAssertLessThanOrEqual(abs(analytic[i] - numeric), 2e-3 + 1e-2 * abs(numeric), "\(name)[\(i)]")
            }
        }
    }
}
