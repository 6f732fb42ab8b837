import GroveTensor

/// Seeded orderings of a dataset's rows.
public enum DatasetSplit {
    /// A permutation of 0..<n from a seed (Fisher–Yates with `SeededRandom`).
    public static func shuffled(_ n: Int, seed: UInt64, stream: UInt64 = 0) -> [Int] {
        var rng = SeededRandom(seed: seed, streams: [stream])
        var order = Array(0..<n)
        for i in stride(from: n - 1, to: 0, by: -1) {
            order.swapAt(i, Int(rng.next() % UInt64(i + 1)))
        }
        return order
    }

    /// Splits 0..<n into a held-out part of `evalSize` rows and the rest, from a seed.
    public static func trainEval(_ n: Int, evalSize: Int, seed: UInt64) -> (train: [Int], eval: [Int]) {
        let order = shuffled(n, seed: seed, stream: 0xE7A1)
        let k = min(evalSize, n - 1)
        return (Array(order[k...]).sorted(), Array(order[..<k]).sorted())
    }
}
