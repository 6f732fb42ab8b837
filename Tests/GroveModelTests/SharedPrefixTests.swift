import Foundation
import GroveTestSupport
import XCTest
@testable import GroveModel
@testable import GroveTensor

/// The shared-prefix layout (each prompt computed once, its completions attending to it) against
/// running every prompt + completion on its own: same hidden states, same parameter gradients.
final class SharedPrefixTests: XCTestCase {
    let config = ModelConfig(modelType: .qwen2, vocabSize: 40, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 2,
                             numAttentionHeads: 4, numKeyValueHeads: 2, maxPositionEmbeddings: 64)
    // Prompts of different lengths (so one is left-padded), completions of different lengths
    // (right-padded), two completions of prompt 0 and one of prompt 2; prompt 1 has none.
    let prefixes: [[Int32]] = [[5, 9, 2], [7, 1, 1, 3, 8], [4]]
    let suffixes: [[Int32]] = [[11, 12, 13, 14], [11, 30], [6, 6, 6], [21]]
    let prefixOf = [0, 0, 2, 1]

    /// Σ over suffix positions of w · (hidden state), the same weights in both layouts.
    func weightedHidden(_ model: Transformer, shared: Bool) -> (Tensor, [[Float]]) {
        var rng = SeededRandom(seed: 9)
        var total: Tensor? = nil, rows: [[Float]] = []
        let batch = SharedPrefixBatch(prefixes: prefixes, suffixes: suffixes, prefixOf: prefixOf, pad: 0)
        let sharedHidden = shared ? model.hiddenStates(batch) : nil
        for (b, suffix) in suffixes.enumerated() {
            let prefix = prefixes[prefixOf[b]]
            // Rows of this sequence that read the prompt's last token and every completion token.
            let picked: Tensor
            if let sharedHidden {
                let rowIds = [batch.lastPrefixRow(prefixOf[b])] + suffix.indices.map { batch.suffixRow(b, $0) }
                picked = gatherRows(sharedHidden, rowIds.map(Int32.init))
            } else {
                let h = model.hiddenStates(tokens: prefix + suffix, batch: 1)
                picked = gatherRows(h, (prefix.count - 1..<prefix.count + suffix.count).map(Int32.init))
            }
            rows.append(picked.values)
            let w = Tensor.randn(picked.shape, rng: &rng)
            let term = sum(mul(picked, w))
            total = total.map { add($0, term) } ?? term
        }
        return (total!, rows)
    }

    func testSameHiddenStatesAndGradientsAsSeparateSequences() {
        check(Transformer(config: config, seed: 4))
    }

    /// DeepSeek-V3: latent attention (values narrower than keys) and routed experts.
    func testDeepSeek() {
        let latent = LatentAttentionConfig(qLoraRank: 8, kvLoraRank: 8, qkNopeHeadDim: 4, qkRopeHeadDim: 4, vHeadDim: 6)
        let moe = MixtureOfExpertsConfig(firstKDenseReplace: 1, moeIntermediateSize: 8, nSharedExperts: 1, nRoutedExperts: 4,
                                         numExpertsPerTok: 2, selection: .biasCorrected(groups: 2, topGroups: 1), normTopkProb: true)
        let deepSeek = ModelConfig(modelType: .deepseekV3, vocabSize: 40, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 2,
                                   numAttentionHeads: 4, maxPositionEmbeddings: 64, initializerRange: 0.2,
                                   attention: .latent(latent), feedForward: .mixtureOfExperts(moe))
        check(Transformer(config: deepSeek, seed: 4), everyParameter: false)
    }

    /// `everyParameter`: each gets a gradient (not so for an expert no real token chose).
    func check(_ model: Transformer, everyParameter: Bool = true, file: StaticString = #filePath, line: UInt = #line) {
        let (separate, separateRows) = weightedHidden(model, shared: false)
        separate.backward()
        let separateGrads = model.parameters.map { $0.gradValues ?? [] }
        for p in model.parameters { p.zeroGrad() }
        let (shared, sharedRows) = weightedHidden(model, shared: true)
        shared.backward()
        for (a, b) in zip(separateRows, sharedRows) { XCTAssertLessThan(maxAbsDiff(a, b), 1e-5, file: file, line: line) }
        XCTAssertEqual(shared.item, separate.item, accuracy: 1e-3, file: file, line: line)
        for (p, (a, b)) in zip(model.parameters, zip(separateGrads, model.parameters.map { $0.gradValues ?? [] })) {
            if everyParameter { XCTAssertFalse(a.isEmpty, file: file, line: line) }
            let zeros = [Float](repeating: 0, count: p.count)
            let (a, b) = (a.isEmpty ? zeros : a, b.isEmpty ? zeros : b)
            XCTAssertLessThan(maxAbsDiff(a, b), 1e-4 * max(1, a.map(abs).max()!), "\(p.shape)", file: file, line: line)
        }
    }
}
