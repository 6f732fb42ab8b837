import Foundation
import GroveTensor

/// A DeepSeekMoE layer's weights (DeepSeek-V2 §2.2): the router, the routed experts and the shared
/// experts (one MLP of n_shared_experts × moe_intermediate_size), Hugging Face's names in camelCase.
public struct MixtureOfExperts {
    /// The router's W [E, C] (`mlp.gate.weight`).
    public let gate: Tensor
    /// V3's per-expert bias added to the scores when choosing, never when weighing (a buffer, not trained by the optimizer).
    public let eScoreCorrectionBias: Tensor?
    public internal(set) var experts: [GatedMLP]
    public internal(set) var sharedExperts: GatedMLP?
}

/// How training keeps DeepSeekMoE's experts evenly loaded (`Transformer.expertBalancing`).
public struct ExpertBalancing: Equatable {
    /// α of DeepSeek-V2's expert-level balance loss (§2.2.3), added to the training loss per MoE layer; 0: none.
    public var alpha: Double
    /// γ of DeepSeek-V3's auxiliary-loss-free balancing (§2.1.2): after each step every expert's
    /// e_score_correction_bias moves by γ toward balance, b_i += γ·sign(mean load − load_i); 0: none (V3 models only).
    public var gamma: Double

    public init(alpha: Double = 0, gamma: Double = 0) { self.alpha = alpha; self.gamma = gamma }
}

/// Tokens routed to each expert of one MoE layer over a training step's forward passes.
public struct ExpertLoad: Equatable {
    public let layer: Int
    public let tokensPerExpert: [Int]
    public init(layer: Int, tokensPerExpert: [Int]) { self.layer = layer; self.tokensPerExpert = tokensPerExpert }
    public var max: Double { Double(tokensPerExpert.max() ?? 0) }
    public var mean: Double { Double(tokensPerExpert.reduce(0, +)) / Double(Swift.max(tokensPerExpert.count, 1)) }
}

/// What the training forward passes of a step leave for the step's end: routing counts and balance-loss terms.
final class RoutingRecord {
    /// Per MoE layer (keyed by its router tensor), tokens routed to each expert.
    var counts: [ObjectIdentifier: [Int]] = [:]
    /// α·L_ExpBal of each MoE layer since the trainer last took them.
    var balanceLoss: Tensor?
}

extension Transformer {
    /// The balance loss of the forward passes since the last call (nil without α or MoE layers), for the
    /// trainer to add to its loss before `backward`.
    public func takeBalanceLoss() -> Tensor? {
        defer { routing.balanceLoss = nil }
        return routing.balanceLoss
    }

    /// Tokens per expert of every MoE layer over the training forward passes since the last call.
    public func takeExpertLoads() -> [ExpertLoad] {
        defer { routing.counts = [:] }
        return layers.enumerated().compactMap { i, layer in
            guard case .mixtureOfExperts(let moe) = layer.mlp, let counts = routing.counts[ObjectIdentifier(moe.gate)] else { return nil }
            return ExpertLoad(layer: i, tokensPerExpert: counts)
        }
    }

    /// Index and routed-expert count of every MoE layer, in order: what every rank's loads can be laid out by.
    public var mixtureOfExpertsLayers: [(layer: Int, experts: Int)] {
        layers.enumerated().compactMap { i, layer in
            guard case .mixtureOfExperts(let moe) = layer.mlp else { return nil }
            return (i, moe.gate.shape[0])
        }
    }

    /// DeepSeek-V3's bias update from a step's loads: b_i += γ·sign(mean − load_i) (a V2 layer has no bias).
    public func updateRoutingBias(_ loads: [ExpertLoad]) {
        guard expertBalancing.gamma > 0 else { return }
        let gamma = Float(expertBalancing.gamma)
        for load in loads {
            guard case .mixtureOfExperts(let moe) = layers[load.layer].mlp, let bias = moe.eScoreCorrectionBias else { continue }
            let mean = Float(load.mean)
            for (e, n) in load.tokensPerExpert.enumerated() {
                let gap = mean - Float(n)
                bias.data[e] += gap > 0 ? gamma : gap < 0 ? -gamma : 0
            }
        }
    }

    /// DeepSeekMoE on N rows of normalised hidden states x [N, C] → [N, C]:
    ///
    ///   y = Σ_{i ∈ shared} FFN_i(x) + Σ_{k} w_k · FFN_{e_k}(x),   e = the router's choice, w = `expertWeights`
    func expertsMLP(_ moe: MixtureOfExperts, _ x: Tensor, packed: DecodeWeights? = nil) -> Tensor {
        guard case .mixtureOfExperts(let c) = config.feedForward else { preconditionFailure("expertsMLP: the config has no experts") }
        let logits = linear(x, moe.gate)  // (N, E)
        let chosen = selectExperts(logits, c, bias: moe.eScoreCorrectionBias)
        let scoring: ExpertScoring
        if case .biasCorrected = c.selection { scoring = .sigmoid } else { scoring = .softmax }
        // Training forward passes (a checkpointed block's first, unrecorded one; not its recomputation) count the routing.
        if (GradMode.isEnabled && !gradientCheckpointing) || inCheckpointedForward {
            var counts = routing.counts[ObjectIdentifier(moe.gate), default: [Int](repeating: 0, count: c.nRoutedExperts)]
            for e in chosen { counts[Int(e)] += 1 }
            routing.counts[ObjectIdentifier(moe.gate)] = counts
        }
        if expertBalancing.alpha > 0 && GradMode.isEnabled && !gradientCheckpointing {
            let term = scale(expertBalanceLoss(logits, experts: chosen, k: c.numExpertsPerTok, scoring: scoring), Float(expertBalancing.alpha))
            routing.balanceLoss = routing.balanceLoss.map { add($0, term) } ?? term
        }
        let weights = expertWeights(logits, experts: chosen, k: c.numExpertsPerTok, scoring: scoring, normalize: c.normTopkProb,
                                    scale: Float(c.routedScalingFactor))
        var y = mixtureOfExperts(x, experts: chosen, weights: weights, gate: moe.experts.map(\.gateProj.weight),
                                 up: moe.experts.map(\.upProj.weight), down: moe.experts.map(\.downProj.weight))
        if let shared = moe.sharedExperts {
            y = add(y, project(shared.downProj, swiglu(project(shared.gateProj, x, packed: packed), project(shared.upProj, x, packed: packed)), packed: packed))
        }
        return y
    }
}

/// Each row's K experts (N·K indices, row-major) from router logits [N, E], as transformers' routers choose:
/// - greedy: the K best softmax scores;
/// - groupLimited: the experts outside the `topGroups` groups with the best maximum score set to 0,
///   then the K best;
/// - biasCorrected (V3): choice scores σ(logit) + bias; the `topGroups` groups with the best sum of their
///   two best choice scores stay, then the K best choice scores.
/// Softmax keeps the logits' order (and scores are positive), so V2's choices are made on the logits.
/// The choice is not differentiable; the weights of the chosen experts are (`expertWeights`).
func selectExperts(_ logits: Tensor, _ c: MixtureOfExpertsConfig, bias: Tensor?) -> [Int32] {
    let E = logits.shape.last!, N = logits.count / E, K = c.numExpertsPerTok
    var chosen = [Int32](repeating: 0, count: N * K)
    var scores = [Float](repeating: 0, count: E)
    /// Indices of the `k` largest of `values` (ties: the lower index first).
    func top(_ k: Int, _ values: ArraySlice<Float>) -> [Int] {
        Array(values.indices.sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }.prefix(k))
    }
    for n in 0..<N {
        let row = logits.data + n * E
        let groups: Int, topGroups: Int, groupScore: (ArraySlice<Float>) -> Float
        switch c.selection {
        case .greedy:
            for e in 0..<E { scores[e] = row[e] }
            (groups, topGroups, groupScore) = (1, 1, { _ in 0 })
        case let .groupLimited(g, t):
            for e in 0..<E { scores[e] = row[e] }
            (groups, topGroups, groupScore) = (g, t, { $0.max()! })
        case let .biasCorrected(g, t):
            let b = bias!.data
            for e in 0..<E { scores[e] = 1 / (1 + expf(-row[e])) + b[e] }
            (groups, topGroups, groupScore) = (g, t, { group in top(2, group).reduce(0) { $0 + group[$1] } })
        }
        if topGroups < groups {
            let size = E / groups
            let kept = Set(top(topGroups, ArraySlice((0..<groups).map { groupScore(scores[$0 * size..<($0 + 1) * size]) })))
            for e in 0..<E where !kept.contains(e / size) { scores[e] = -.infinity }
        }
        // The K best, best first (ties: the lower index), by K passes of argmax: no allocation per row.
        for k in 0..<K {
            var best = -1
            for e in 0..<E where !chosen[n * K..<n * K + k].contains(Int32(e)) && (best < 0 || scores[e] > scores[best]) { best = e }
            chosen[n * K + k] = Int32(best)
        }
    }
    return chosen
}
