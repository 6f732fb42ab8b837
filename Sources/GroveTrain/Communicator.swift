import Foundation
import GroveTensor

/// The processes of a data-parallel run and the collectives the trainers need of them. Every
/// rank holds the whole model, trains on its share of each step's batch, and applies the same
/// update from the summed gradients. `SingleProcess` is the one-process case (nothing to send);
/// the `GroveMPI` module implements it over Open MPI.
///
/// Every method is collective: each rank calls it, in the same order, or the job hangs.
public protocol Communicator: AnyObject {
    /// This process's index, 0..<size; rank 0 writes the run's files.
    var rank: Int { get }
    var size: Int { get }
    /// Sums `values` elementwise over every rank, in place; every rank ends with the same bits.
    func allReduceSum(_ values: UnsafeMutableBufferPointer<Float>)
    /// Every rank's bytes, in rank order.
    func allGather(_ bytes: [UInt8]) -> [[UInt8]]
}

/// A run of one process: its share is everything and the collectives return what they got.
public final class SingleProcess: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allReduceSum(_ values: UnsafeMutableBufferPointer<Float>) {}
    public func allGather(_ bytes: [UInt8]) -> [[UInt8]] { [bytes] }
}

extension Communicator {
    /// Every rank's values, in rank order.
    public func allGather(_ values: [Double]) -> [[Double]] {
        allGather(values.withUnsafeBytes { Array($0) }).map { bytes in
            bytes.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
        }
    }

    /// The elementwise sum over ranks, added in rank order (so every rank gets the same bits).
    public func sum(_ values: [Double]) -> [Double] {
        guard size > 1 else { return values }
        let all = allGather(values)
        return all.dropFirst().reduce(into: all[0]) { total, other in
            for i in total.indices { total[i] += other[i] }
        }
    }

    /// Rank 0's values, on every rank.
    public func fromRankZero(_ values: [Double]) -> [Double] {
        size == 1 ? values : allGather(values)[0]
    }

    /// Every rank's value of something that must agree (a recipe's hash, a checkpoint's step),
    /// and the first rank whose value differs from rank 0's, if any.
    public func firstDisagreeing(_ value: String) -> (rank: Int, value: String, rankZero: String)? {
        let all = allGather(Array(value.utf8)).map { String(decoding: $0, as: UTF8.self) }
        return all.indices.first { all[$0] != all[0] }.map { ($0, all[$0], all[0]) }
    }

    /// This rank's share of `count` items dealt round-robin: i % size == rank.
    func share(_ count: Int) -> [Int] {
        Array(stride(from: rank, to: count, by: size))
    }

    /// This rank's share of items that cost `costs` (tokens): longest first, each to the rank with
    /// the least so far (the lowest such rank on a tie), so the ranks finish their backward passes
    /// together; indices in ascending order. One rank gets every index, in order.
    func balancedShare(_ costs: [Int]) -> [Int] {
        guard size > 1 else { return Array(costs.indices) }
        var load = [Int](repeating: 0, count: size), owner = [Int](repeating: 0, count: costs.count)
        for i in costs.indices.sorted(by: { costs[$0] != costs[$1] ? costs[$0] > costs[$1] : $0 < $1 }) {
            let r = load.indices.min { load[$0] < load[$1] }!
            owner[i] = r
            load[r] += costs[i]
        }
        return costs.indices.filter { owner[$0] == rank }
    }
}
