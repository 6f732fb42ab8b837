import Foundation

/// A small, fast, seedable generator (xoshiro256**), seeded through SplitMix64.
///
/// Grove derives a generator per (run seed, step, prompt, sample) with
/// `SeededRandom(seed:, streams:)`, so results never depend on thread count.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    public private(set) var state: (UInt64, UInt64, UInt64, UInt64)

    /// A generator for `seed`, optionally mixed with further stream indices.
    public init(seed: UInt64, streams: [UInt64] = []) {
        var x = seed
        for s in streams { x = SeededRandom.splitmix(&x) ^ (s &* 0x9E37_79B9_7F4A_7C15) }
        state = (SeededRandom.splitmix(&x), SeededRandom.splitmix(&x), SeededRandom.splitmix(&x), SeededRandom.splitmix(&x))
    }

    /// Restores a generator from a saved `state` (checkpoints).
    public init(state: (UInt64, UInt64, UInt64, UInt64)) { self.state = state }

    private static func splitmix(_ x: inout UInt64) -> UInt64 {
        x &+= 0x9E37_79B9_7F4A_7C15
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let t = state.1 << 17
        state.2 ^= state.0; state.3 ^= state.1; state.1 ^= state.2; state.0 ^= state.3
        state.2 ^= t
        state.3 = (state.3 << 45) | (state.3 >> 19)
        return result
    }

    /// Uniform in [0, 1).
    public mutating func uniform() -> Float { Float(next() >> 40) * (1.0 / Float(1 << 24)) }

    /// Standard normal (Box–Muller).
    public mutating func normal() -> Float {
        let u1 = max(Double(next() >> 11) * (1.0 / Double(1 << 53)), 1e-300)
        let u2 = Double(next() >> 11) * (1.0 / Double(1 << 53))
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}


extension Tensor {
    /// Normal(0, std²) entries from a seeded generator.
    public static func randn(_ shape: [Int], std: Float = 1, rng: inout SeededRandom, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(zeros: shape, requiresGrad: requiresGrad)
        for i in 0..<t.count { t.data[i] = rng.normal() * std }
        return t
    }
}
