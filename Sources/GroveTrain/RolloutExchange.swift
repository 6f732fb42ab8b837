import Foundation
import GroveRollout

/// A completion with its per-function rewards, as it travels between ranks.
struct ScoredCompletion: Codable {
    let completion: Completion
    let scores: [Double?]
}

/// What the ranks of a data-parallel GRPO step send each other: their scored completions
/// (so each holds the whole step's rollouts) and their loss statistics (so each reports the
/// whole batch's metrics).
extension Communicator {
    /// Every rank's completions and their per-function rewards, ordered as one process samples
    /// them (by group, then sample).
    func exchange(_ completions: [Completion], scores: [[Double?]]) -> (completions: [Completion], scores: [[Double?]]) {
        let encoder = JSONEncoder()
        // Rewards are finite (WeightedRewards checks); a sampled token's log-prob could still be −inf.
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        // Encoding plain values and decoding what this very program encoded cannot fail.
        let mine = try! encoder.encode(zip(completions, scores).map { ScoredCompletion(completion: $0, scores: $1) })
        let all = allGather(Array(mine)).flatMap { try! decoder.decode([ScoredCompletion].self, from: Data($0)) }
            .sorted { ($0.completion.group, $0.completion.sample) < ($1.completion.group, $1.completion.sample) }
        return (all.map(\.completion), all.map(\.scores))
    }

    /// The whole batch's loss statistics and entropy sum from every rank's share, merged in rank order.
    func merge(_ metrics: GRPOLossMetrics, entropy: (sum: Double, count: Int)) -> (GRPOLossMetrics, (sum: Double, count: Int)) {
        let mine = [Double(metrics.tokens), metrics.klSum, Double(metrics.clipLowCount), Double(metrics.clipHighCount),
                    metrics.clipLowMin, metrics.clipHighMax, entropy.sum, Double(entropy.count)]
        var merged = GRPOLossMetrics(), total = (sum: 0.0, count: 0)
        for v in allGather(mine) {
            merged.merge(GRPOLossMetrics(tokens: Int(v[0]), klSum: v[1], clipLowCount: Int(v[2]), clipHighCount: Int(v[3]),
                                         clipLowMin: v[4], clipHighMax: v[5]))
            total = (total.sum + v[6], total.count + Int(v[7]))
        }
        return (merged, total)
    }
}
