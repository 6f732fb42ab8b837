import Foundation

/// Rotary position embedding tables: cos and sin of position·θ^(−2i/HS), i < HS/2,
/// computed once per model (HF's `rotate_half` convention: the two halves of a head rotate together).
public final class RoPETable {
    public let headDim: Int
    public let theta: Double
    private(set) var positions = 0
    private var cosTable: [Float] = []  // (P, HS/2)
    private var sinTable: [Float] = []  // (P, HS/2)

    public init(headDim: Int, theta: Double, positions: Int = 256) {
        precondition(headDim % 2 == 0, "RoPE needs an even head size, got \(headDim)")
        self.headDim = headDim
        self.theta = theta
        grow(to: positions)
    }

    /// Makes sure positions 0..<n are tabulated.
    public func grow(to n: Int) {
        guard n > positions else { return }
        let half = headDim / 2
        // inv_freq is computed in float32 as transformers does, then the angle in double.
        let invFreq = (0..<half).map { i in Float(1.0 / pow(theta, Double(Float(2 * i) / Float(headDim)))) }
        for p in positions..<n {
            for i in 0..<half {
                let angle = Double(Float(p) * invFreq[i])
                cosTable.append(Float(cos(angle)))
                sinTable.append(Float(sin(angle)))
            }
        }
        positions = n
    }

    /// Rotates each head of `x` in place: for i < HS/2,
    /// (x_i, x_{i+h}) ← (x_i·cos − x_{i+h}·sin, x_{i+h}·cos + x_i·sin); `inverse` uses −angle.
    func rotate(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, positions pos: [Int32], inverse: Bool) {
        let half = headDim / 2, HS = headDim
        cosTable.withUnsafeBufferPointer { cp in
            sinTable.withUnsafeBufferPointer { sp in
                let c = cp.baseAddress!, s = sp.baseAddress!, sign: Float = inverse ? -1 : 1
                for r in 0..<rows {
                    let tc = c + Int(pos[r]) * half, ts = s + Int(pos[r]) * half
                    for h in 0..<heads {
                        let v = x + (r * heads + h) * HS
                        for i in 0..<half {
                            let a = v[i], b = v[i + half], sn = sign * ts[i]
                            v[i] = a * tc[i] - b * sn
                            v[i + half] = b * tc[i] + a * sn
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
