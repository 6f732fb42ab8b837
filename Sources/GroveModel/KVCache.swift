import GroveTensor

/// Keys and values of every layer for B sequences decoded together, so that each new
/// token costs one row of attention instead of a forward pass over the whole sequence.
///
/// Rows are allocated for `capacity` positions; `length` are filled. `keyMask` marks the
/// real (non-padding) positions of each row and `nextPosition` the RoPE position of each
/// row's next token, which is how left-padded prompts of different lengths decode together.
public final class KVCache {
    /// What a layer keeps per position.
    public enum Layout {
        /// Each KV head's key and value (grouped attention; latent attention expanded, NH·(dn + dr + dv) floats).
        case keysAndValues
        /// Latent attention's compressed latent and RoPE key, [c_KV | RoPE(k_R)]: r + dr floats per layer
        /// (DeepSeek-V2 §2.1.4), decoded with W_UK absorbed into the query and W_UV into the output.
        case latent
    }

    public let batch: Int
    public let capacity: Int
    public let layout: Layout
    public private(set) var length = 0
    let keys: [Tensor]    // L × (B, capacity, KVH, HS); latent: L × (B, capacity, 1, r + dr)
    let values: [Tensor]  // L × (B, capacity, KVH, HSV), HSV = dv for latent attention; latent layout: none
    var keyMask: [Bool]   // (B, capacity)
    var nextPosition: [Int32]  // (B)

    /// A cache for `batch` rows of `capacity` positions; latent attention's default `layout` is `.latent`.
    public init(config: ModelConfig, batch: Int, capacity: Int, layout: Layout? = nil) {
        self.batch = batch
        self.capacity = capacity
        let L = config.numHiddenLayers
        switch config.attention {
        case .grouped:
            self.layout = .keysAndValues
            let shape = [batch, capacity, config.numKeyValueHeads, config.headDim]
            keys = (0..<L).map { _ in Tensor(zeros: shape) }
            values = (0..<L).map { _ in Tensor(zeros: shape) }
        case .latent(let latent):
            self.layout = layout ?? .latent
            if self.layout == .latent {
                keys = (0..<L).map { _ in Tensor(zeros: [batch, capacity, 1, latent.kvLoraRank + latent.qkRopeHeadDim]) }
                values = []
            } else {
                keys = (0..<L).map { _ in Tensor(zeros: [batch, capacity, config.numAttentionHeads, latent.qkHeadDim]) }
                values = (0..<L).map { _ in Tensor(zeros: [batch, capacity, config.numAttentionHeads, latent.vHeadDim]) }
            }
        }
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
        precondition(layout == other.layout, "KVCache: copyRows between layouts")
        let n = other.length
        for (mine, theirs) in zip(keys + values, other.keys + other.values) {
            let row = mine.count / (batch * capacity)
            for (b, src) in sources.enumerated() {
                (mine.data + b * capacity * row).update(from: theirs.data + src * other.capacity * row, count: n * row)
            }
        }
        for (b, src) in sources.enumerated() {
            for t in 0..<n { keyMask[b * capacity + t] = other.keyMask[src * other.capacity + t] }
            nextPosition[b] = other.nextPosition[src]
        }
        length = n
    }

    /// Copies a layer's new keys [B, T, KVH, HS] and values [B, T, KVH, HSV] (latent layout: the
    /// latents [B, T, 1, r + dr] and no values) into rows length−T ..< length.
    func store(layer: Int, keys k: Tensor, values v: Tensor?) {
        let T = k.shape[1], start = length - T
        func copy(_ source: Tensor, into destination: Tensor) {
            let row = source.count / (batch * T)
            for b in 0..<batch {
                (destination.data + (b * capacity + start) * row).update(from: source.data + b * T * row, count: T * row)
            }
        }
        copy(k, into: keys[layer])
        if let v { copy(v, into: values[layer]) }
    }

    /// Bytes the cache holds per position of a row, over all layers (float32).
    public var bytesPerToken: Int { (keys + values).reduce(0) { $0 + $1.count } / (batch * capacity) * 4 }
}
