import GroveConfig
import GroveModel

/// The DeepSeekMoE balancing keys every training stage takes: `moe_balance_alpha` (DeepSeek-V2's
/// expert-level balance loss) and `moe_bias_gamma` (DeepSeek-V3's bias update, V3 models only).
enum ExpertBalancingKeys {
    static let all = ["moe_balance_alpha", "moe_bias_gamma"]

    static func read(_ s: Fields, gradientCheckpointing: Bool) throws -> ExpertBalancing {
        let balancing = ExpertBalancing(alpha: try s.double("moe_balance_alpha", default: 0, range: 0...10),
                                        gamma: try s.double("moe_bias_gamma", default: 0, range: 0...1))
        if balancing.alpha > 0 && gradientCheckpointing, let value = s["moe_balance_alpha"] {
            // A checkpointed block's forward records no graph, so its balance-loss term could not be differentiated.
            throw s.reader.error(value, s.path("moe_balance_alpha"), "does not work with gradient_checkpointing: turn one of them off")
        }
        return balancing
    }
}
