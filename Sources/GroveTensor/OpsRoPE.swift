import Foundation

/// Rotary position embedding tables: cos and sin of position·θ^(−2i/HS), i < HS/2,
/// computed once per model. `layout` says which two elements of a head rotate together.
public final class RoPETable {
    /// Which two elements of a head form each rotating pair.
    public enum Layout {
        /// (x_i, x_{i+HS/2}): Hugging Face's `rotate_half` (Llama, Qwen2, DeepSeek-V3 without `rope_interleave`).
        case halves
        /// (x_{2i}, x_{2i+1}): DeepSeek's complex pairs (V2's `view_as_complex`, V3's `rope_interleave`).
        case pairs
    }

    public let headDim: Int
    public let layout: Layout
    /// inv_freq_i, i < HS/2 (float32, as transformers computes them).
    let inverseFrequencies: [Float]
    /// Multiplies every cos and sin (YaRN's attention_factor; 1 otherwise).
    let attentionFactor: Float
    private(set) var positions = 0
    private var cosTable: [Float] = []  // (P, HS/2)
    private var sinTable: [Float] = []  // (P, HS/2)

    /// The standard table, inv_freq_i = θ^(−2i/HS), in the `rotate_half` layout.
    public convenience init(headDim: Int, theta: Double, positions: Int = 256) {
        precondition(headDim % 2 == 0, "RoPE needs an even head size, got \(headDim)")
        // inv_freq is computed in float32 as transformers does, then the angle in double.
        let invFreq = (0..<headDim / 2).map { i in Float(1.0 / pow(theta, Double(Float(2 * i) / Float(headDim)))) }
        self.init(headDim: headDim, inverseFrequencies: invFreq, attentionFactor: 1, layout: .halves, positions: positions)
    }

    /// A table from given inverse frequencies (YaRN's, `RoPEScaling`), cos and sin scaled by `attentionFactor`.
    public init(headDim: Int, inverseFrequencies: [Float], attentionFactor: Float, layout: Layout, positions: Int = 256) {
        precondition(headDim % 2 == 0 && inverseFrequencies.count == headDim / 2, "RoPE: \(inverseFrequencies.count) frequencies for head size \(headDim)")
        self.headDim = headDim
        self.layout = layout
        self.inverseFrequencies = inverseFrequencies
        self.attentionFactor = attentionFactor
        grow(to: positions)
    }

    /// Makes sure positions 0..<n are tabulated.
    public func grow(to n: Int) {
        guard n > positions else { return }
        let half = headDim / 2
        for p in positions..<n {
            for i in 0..<half {
                let angle = Double(Float(p) * inverseFrequencies[i])
                cosTable.append(Float(cos(angle)) * attentionFactor)  // × 1 is exact: the standard table is unchanged
                sinTable.append(Float(sin(angle)) * attentionFactor)
            }
        }
        positions = n
    }

    /// Rotates each head of `x` in place: for i < HS/2 and its pair (a, b) = (x_i, x_{i+HS/2}) or
    /// (x_{2i}, x_{2i+1}), (a, b) ← (a·cos − b·sin, b·cos + a·sin); `inverse` uses −angle (the
    /// transpose, also with an attention factor).
    func rotate(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, positions pos: [Int32], inverse: Bool) {
        let half = headDim / 2, HS = headDim
        // Pair i is (i·step, i·step + second): (i, i + half) or (2i, 2i + 1).
        let (second, step) = layout == .halves ? (half, 1) : (1, 2)
        cosTable.withUnsafeBufferPointer { cp in
            sinTable.withUnsafeBufferPointer { sp in
                let c = cp.baseAddress!, s = sp.baseAddress!, sign: Float = inverse ? -1 : 1
                for r in 0..<rows {
                    let tc = c + Int(pos[r]) * half, ts = s + Int(pos[r]) * half
                    for h in 0..<heads {
                        let v = x + (r * heads + h) * HS
                        for i in 0..<half {
                            let ia = i * step, ib = ia + second
                            let a = v[ia], b = v[ib], sn = sign * ts[i]
                            v[ia] = a * tc[i] - b * sn
                            v[ib] = b * tc[i] + a * sn
                        }
                    }
                }
            }
        }
    }
}

/// Applies RoPE to x [B, T, H, HS] (or [N, H, HS]) with one position per row (B·T of them).
/// The backward pass is the inverse rotation of the incoming gradient.
public func rope(_ x: Tensor, positions: [Int32], table: RoPETable) -> Tensor {
    let HS = table.headDim, rows = positions.count
    precondition(x.shape.last == HS && x.count % (rows * HS) == 0, "rope: \(x.shape) with \(rows) positions, head size \(HS)")
    let heads = x.count / (rows * HS)
    table.grow(to: Int(positions.max() ?? 0) + 1)
    let out = x.detached()
    table.rotate(out.data, rows: rows, heads: heads, positions: positions, inverse: false)
    out.record([x]) { out in
        let g = out.grad.detachedCopy(count: x.count)
        table.rotate(g.base, rows: rows, heads: heads, positions: positions, inverse: true)
        let dx = x.grad
        for i in 0..<x.count { dx[i] += g.base[i] }
    }
    return out
}

extension UnsafeMutablePointer where Pointee == Float {
    /// A new storage holding a copy of `count` floats from here.
    func detachedCopy(count: Int) -> Storage {
        let s = Storage(count: count, zeroed: false)
        s.base.update(from: self, count: count)
        return s
    }
}
