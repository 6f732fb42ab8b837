import GroveTensor

/// Keys and values of every layer for B sequences decoded together, so that each new
/// token costs one row of attention instead of a forward pass over the whole sequence.
///
/// Rows are allocated for `capacity` positions; `length` are filled. `keyMask` marks the
/// real (non-padding) positions of each row and `nextPosition` the RoPE position of each
/// row's next token, which is how left-padded prompts of different lengths decode together.
public final class KVCache {
    public let batch: Int
    public let capacity: Int
    public private(set) var length = 0
    let keys: [Tensor]    // L × (B, capacity, KVH, HS)
    let values: [Tensor]  // L × (B, capacity, KVH, HSV); latent attention: KVH = NH, HS = dn + dr, HSV = dv
    var keyMask: [Bool]   // (B, capacity)
    var nextPosition: [Int32]  // (B)

    public init(config: ModelConfig, batch: Int, capacity: Int) {
        self.batch = batch
        self.capacity = capacity
        var keyShape = [batch, capacity, config.numKeyValueHeads, config.headDim], valueShape = keyShape
        if case .latent(let latent) = config.attention {
            keyShape[3] = latent.qkHeadDim
            valueShape[3] = latent.vHeadDim
        }
        keys = (0..<config.numHiddenLayers).map { _ in Tensor(zeros: keyShape) }
        values = (0..<config.numHiddenLayers).map { _ in Tensor(zeros: valueShape) }
        keyMask = [Bool](repeating: false, count: batch * capacity)
        nextPosition = [Int32](repeating: 0, count: batch)
    }

    /// Registers T new positions per row (with their padding mask) and returns their RoPE positions.
    func append(length T: Int, mask: [Bool]?) -> [Int32] {
        precondition(length + T <= capacity, "KVCache: \(length + T) positions exceed capacity \(capacity)")
        var positions = [Int32](repeating: 0, count: batch * T)
        for b in 0..<batch {
            for t in 0..<T {
                let real = mask?[b * T + t] ?? true
                keyMask[b * capacity + length + t] = real
                positions[b * T + t] = nextPosition[b]
                if real { nextPosition[b] += 1 }
            }
        }
        length += T
        return positions
    }

    /// Fills this (empty) cache with rows of `other`: row b gets the `other.length` positions of
    /// row `sources[b]` (a prompt prefilled once, continued by several rows).
    func copyRows(of other: KVCache, sources: [Int]) {
        precondition(length == 0 && sources.count == batch && other.length <= capacity, "KVCache: copyRows")
        let kRow = keys[0].count / (batch * capacity), vRow = values[0].count / (batch * capacity), n = other.length
        for (layer, (k, v)) in zip(keys, values).enumerated() {
            for (b, src) in sources.enumerated() {
                (k.data + b * capacity * kRow).update(from: other.keys[layer].data + src * other.capacity * kRow, count: n * kRow)
                (v.data + b * capacity * vRow).update(from: other.values[layer].data + src * other.capacity * vRow, count: n * vRow)
            }
        }
        for (b, src) in sources.enumerated() {
            for t in 0..<n { keyMask[b * capacity + t] = other.keyMask[src * other.capacity + t] }
            nextPosition[b] = other.nextPosition[src]
        }
        length = n
    }

    /// Copies a layer's new keys [B, T, KVH, HS] and values [B, T, KVH, HSV] into rows length−T ..< length.
    func store(layer: Int, keys k: Tensor, values v: Tensor) {
        let T = k.shape[1], kRow = k.count / (batch * T), vRow = v.count / (batch * T), start = length - T
        for b in 0..<batch {
            (keys[layer].data + (b * capacity + start) * kRow).update(from: k.data + b * T * kRow, count: T * kRow)
            (values[layer].data + (b * capacity + start) * vRow).update(from: v.data + b * T * vRow, count: T * vRow)
        }
    }
}
