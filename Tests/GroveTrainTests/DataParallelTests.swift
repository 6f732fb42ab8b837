import Foundation
import XCTest
import GroveModel
@testable import GroveTensor
@testable import GroveTrain

/// The data-parallel pieces that need no MPI: how a batch is shared out, and the packing of
/// gradients around the all-reduce. (Two real ranks under mpirun: GroveCLITests/MPIRunTests.)
final class DataParallelTests: XCTestCase {
    /// A rank of a pretend job whose other ranks hold exactly what this one holds: the sum of a
    /// value over ranks is `size` times it.
    final class Mirrored: Communicator {
        let rank: Int, size: Int
        init(rank: Int, size: Int) { self.rank = rank; self.size = size }
        func allReduceSum(_ values: UnsafeMutableBufferPointer<Float>) {
            for i in values.indices { values[i] *= Float(size) }
        }
        func allGather(_ bytes: [UInt8]) -> [[UInt8]] { Array(repeating: bytes, count: size) }
    }

    func testBalancedSharePartitionsByCost() {
        let costs = [90, 10, 80, 20, 70, 30, 25, 5, 60]
        XCTAssertEqual(Mirrored(rank: 0, size: 1).balancedShare(costs), Array(costs.indices), "one rank: everything, in order")
        for size in [2, 3, 4] {
            let shares = (0..<size).map { Mirrored(rank: $0, size: size).balancedShare(costs) }
            XCTAssertEqual(shares.flatMap { $0 }.sorted(), Array(costs.indices), "\(size) ranks: every item exactly once")
            for s in shares { XCTAssertEqual(s, s.sorted()) }
            let loads = shares.map { $0.reduce(0) { $0 + costs[$1] } }
            // Longest-first greedy: the spread is at most the largest item dealt last to the lighter rank.
            XCTAssertLessThanOrEqual(loads.max()! - loads.min()!, costs.max()!, "\(size) ranks: \(loads)")
        }
        let two = (0..<2).map { Mirrored(rank: $0, size: 2).balancedShare(costs) }
        XCTAssertEqual(two.map { $0.reduce(0) { $0 + costs[$1] } }, [195, 195])
        XCTAssertEqual(Mirrored(rank: 1, size: 2).share(5), [1, 3])
    }

    /// The all-reduce sums gradients and losses; a parameter no rank touched keeps no gradient
    /// (so AdamW skips it, as in one process).
    func testAllReduceSumsGradientsAndKeepsUntouchedParametersWithout() {
        let touched = Tensor(zeros: [3], requiresGrad: true), untouched = Tensor(zeros: [2], requiresGrad: true)
        for (i, v) in [1, -2, 0.5].enumerated() { touched.grad[i] = Float(v) }
        let reduce = GradientAllReduce(communicator: Mirrored(rank: 0, size: 2), parameters: [untouched, touched])
        XCTAssertEqual(reduce(loss: 1.25), 2.5)
        XCTAssertEqual(touched.gradValues, [2, -4, 1])
        XCTAssertFalse(untouched.hasGradient)
    }

    /// Expert loads add up over ranks (every rank moves V3's bias by the whole batch's counts); a
    /// layer no rank routed through stays absent; one process gets its own loads back.
    func testExpertLoadsSumOverRanks() {
        let layers = [(layer: 1, experts: 3), (layer: 2, experts: 3)]
        let loads = [ExpertLoad(layer: 2, tokensPerExpert: [4, 0, 7])]
        XCTAssertEqual(Mirrored(rank: 0, size: 1).sum(loads, layers: layers), loads)
        XCTAssertEqual(Mirrored(rank: 1, size: 2).sum(loads, layers: layers), [ExpertLoad(layer: 2, tokensPerExpert: [8, 0, 14])])
    }
}
