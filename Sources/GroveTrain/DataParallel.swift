import Foundation
import GroveModel
import GroveTensor

/// The data-parallel step's all-reduce: each rank's gradients (of its share of the batch,
/// already divided by the whole batch's normaliser) are summed over ranks, so every rank holds
/// the whole batch's gradient and applies the same update, as one process with the whole batch.
///
/// The gradients travel in one flat buffer, made once: every parameter's gradient (zeros where
/// this rank has none), then one flag per parameter, 1 where this rank has a gradient. A parameter
/// no rank touched keeps no gradient, so AdamW skips it exactly as a single process would.
final class GradientAllReduce {
    let communicator: Communicator
    let parameters: [Tensor]
    private var buffer: [Float]  // (Σ parameter sizes + parameters.count)

    init(communicator: Communicator, parameters: [Tensor]) {
        self.communicator = communicator
        self.parameters = parameters
        buffer = [Float](repeating: 0, count: parameters.reduce(0) { $0 + $1.count } + parameters.count)
    }

    /// Sums the parameters' gradients over ranks, in place; returns the sum of the ranks' losses.
    func callAsFunction(loss: Double) -> Double {
        let flags = buffer.count - parameters.count
        buffer.withUnsafeMutableBufferPointer { all in
            let base = all.baseAddress!
            var offset = 0
            for (i, p) in parameters.enumerated() {
                if p.hasGradient { (base + offset).update(from: p.grad, count: p.count) } else { (base + offset).update(repeating: 0, count: p.count) }
                base[flags + i] = p.hasGradient ? 1 : 0
                offset += p.count
            }
            communicator.allReduceSum(all)
            offset = 0
            for (i, p) in parameters.enumerated() {
                if base[flags + i] > 0 { p.grad.update(from: base + offset, count: p.count) }
                offset += p.count
            }
        }
        return communicator.sum([loss])[0]
    }
}

extension Communicator {
    /// The step's expert loads summed over ranks, so that every rank reports the whole batch's
    /// loads and moves V3's routing bias by them (the bias is no parameter: the gradient sum does
    /// not keep it equal across ranks). A layer no rank routed through stays absent, as in one process.
    func sum(_ loads: [ExpertLoad], layers: [(layer: Int, experts: Int)]) -> [ExpertLoad] {
        guard size > 1 else { return loads }
        // Per layer: 1 if this rank routed through it, then its counts (zeros if not).
        let mine = Dictionary(uniqueKeysWithValues: loads.map { ($0.layer, $0.tokensPerExpert) })
        let total = sum(layers.flatMap { l in
            mine[l.layer].map { [1] + $0.map(Double.init) } ?? [Double](repeating: 0, count: 1 + l.experts)
        })
        var out: [ExpertLoad] = [], at = 0
        for l in layers {
            if total[at] > 0 { out.append(ExpertLoad(layer: l.layer, tokensPerExpert: total[at + 1...at + l.experts].map { Int($0) })) }
            at += 1 + l.experts
        }
        return out
    }
}

/// FNV-1a, one word at a time: a quick fingerprint for ranks to compare what must be the same
/// (weights, a recipe), not a cryptographic hash.
public struct FNV1a {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    public init() {}
    public mutating func add<Word: FixedWidthInteger & UnsignedInteger>(_ word: Word) { value = (value ^ UInt64(word)) &* 0x100_0000_01b3 }
    public var hex: String { String(value, radix: 16) }
}

/// A fingerprint of the parameters' bits (their 32-bit words), to check that every rank holds the same weights.
func weightsChecksum(_ parameters: [Tensor]) -> String {
    var h = FNV1a()
    for p in parameters {
        let words = UnsafeRawPointer(p.data).bindMemory(to: UInt32.self, capacity: p.count)
        for i in 0..<p.count { h.add(words[i]) }
    }
    return h.hex
}

/// Ranks of one run that disagree on what must be the same.
public struct DataParallelError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
