/// The ggml tensor types Grove reads (ids as in ggml.h). Quantised types store blocks of
/// `blockSize` values in `blockBytes` bytes; f16 scales are IEEE binary16, little-endian.
public enum GGMLType: UInt32, CaseIterable, CustomStringConvertible {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q8_0 = 8, q4_K = 12, q6_K = 14, bf16 = 30

    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q4_0, .q4_1, .q8_0: return 32
        case .q4_K, .q6_K: return 256
        }
    }

    public var blockBytes: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q4_0: return 18
        case .q4_1: return 20
        case .q8_0: return 34
        case .q4_K: return 144
        case .q6_K: return 210
        }
    }

    public var description: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .bf16: return "BF16"
        case .q4_0: return "Q4_0"
        case .q4_1: return "Q4_1"
        case .q8_0: return "Q8_0"
        case .q4_K: return "Q4_K"
        case .q6_K: return "Q6_K"
        }
    }
}

@inline(__always) func f16(_ p: UnsafePointer<UInt8>) -> Float {
    Float(Float16(bitPattern: UInt16(p[0]) | UInt16(p[1]) << 8))
}

/// Converts `count` values of `type` at `src` (whole blocks) to float32, as ggml's
/// `dequantize_row_*` does, operation for operation.
func dequantize(_ type: GGMLType, _ src: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>) {
    let x = src.assumingMemoryBound(to: UInt8.self)
    let blocks = count / type.blockSize
    switch type {
    case .f32:
        for i in 0..<count { y[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
    case .f16:
        for i in 0..<count { y[i] = f16(x + 2 * i) }
    case .bf16:
        for i in 0..<count { y[i] = Float(bitPattern: (UInt32(x[2 * i]) | UInt32(x[2 * i + 1]) << 8) << 16) }
    case .q4_0: dequantizeQ4_0(x, blocks, y)
    case .q4_1: dequantizeQ4_1(x, blocks, y)
    case .q8_0: dequantizeQ8_0(x, blocks, y)
    case .q4_K: dequantizeQ4_K(x, blocks, y)
    case .q6_K: dequantizeQ6_K(x, blocks, y)
    }
}

/// Q4_0, 32 values in 18 bytes: f16 d, then 16 bytes of 4-bit quants q (low nibbles are
/// values 0–15, high nibbles 16–31); value = (q − 8)·d.
func dequantizeQ4_0(_ x: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
    for b in 0..<blocks {
        let block = x + 18 * b, out = y + 32 * b
        let d = f16(block), qs = block + 2
        for j in 0..<16 {
            out[j] = Float(Int(qs[j] & 0xF) - 8) * d
            out[j + 16] = Float(Int(qs[j] >> 4) - 8) * d
        }
    }
}

/// Q4_1, 32 values in 20 bytes: f16 d, f16 m, 16 bytes of nibbles as Q4_0; value = q·d + m.
func dequantizeQ4_1(_ x: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
    for b in 0..<blocks {
        let block = x + 20 * b, out = y + 32 * b
        let d = f16(block), m = f16(block + 2), qs = block + 4
        for j in 0..<16 {
            out[j] = Float(qs[j] & 0xF) * d + m
            out[j + 16] = Float(qs[j] >> 4) * d + m
        }
    }
}

/// Q8_0, 32 values in 34 bytes: f16 d, 32 int8 quants q; value = q·d.
func dequantizeQ8_0(_ x: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
    for b in 0..<blocks {
        let block = x + 34 * b, out = y + 32 * b
        let d = f16(block)
        for j in 0..<32 { out[j] = Float(Int8(bitPattern: block[2 + j])) * d }
    }
}

/// Q4_K, 256 values in 144 bytes: f16 d, f16 dmin, 12 bytes of eight 6-bit (scale, min)
/// pairs, 128 bytes of nibbles. Each 64 values are 32 low nibbles (sub-block 2i) then the
/// same 32 bytes' high nibbles (sub-block 2i+1); value = d·scale·q − dmin·min.
func dequantizeQ4_K(_ x: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
    /// Sub-block j's 6-bit scale and min: j < 4 in the low 6 bits of bytes j and j+4;
    /// j ≥ 4 in the nibbles of byte j+4 plus the top 2 bits of bytes j−4 and j.
    func scaleMin(_ j: Int, _ s: UnsafePointer<UInt8>) -> (Float, Float) {
        if j < 4 { return (Float(s[j] & 63), Float(s[j + 4] & 63)) }
        return (Float((s[j + 4] & 0xF) | (s[j - 4] >> 6) << 4), Float((s[j + 4] >> 4) | (s[j] >> 6) << 4))
    }
    for b in 0..<blocks {
        let block = x + 144 * b
        let d = f16(block), dmin = f16(block + 2), scales = block + 4
        var q = block + 16, out = y + 256 * b
        for i in 0..<4 {
            let (sc1, m1) = scaleMin(2 * i, scales), (sc2, m2) = scaleMin(2 * i + 1, scales)
            let d1 = d * sc1, min1 = dmin * m1, d2 = d * sc2, min2 = dmin * m2
            for l in 0..<32 { out[l] = d1 * Float(q[l] & 0xF) - min1 }
            for l in 0..<32 { out[32 + l] = d2 * Float(q[l] >> 4) - min2 }
            q += 32
            out += 64
        }
    }
}

/// Q6_K, 256 values in 210 bytes: 128 bytes ql (low 4 bits), 64 bytes qh (high 2 bits),
/// 16 int8 scales (one per 16 values), f16 d. Each half of 128 values takes 64 ql, 32 qh and
/// 8 scales: value l + 32k (k = 0…3) has low bits from ql[l] (k even) or ql[l+32] (k odd),
/// low nibble for k < 2, high for k ≥ 2, and bits 2k, 2k+1 of qh[l]; value = d·scale·(q − 32).
func dequantizeQ6_K(_ x: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
    for b in 0..<blocks {
        let block = x + 210 * b
        let d = f16(block + 208)
        var ql = block, qh = block + 128, out = y + 256 * b
        var sc = UnsafeRawPointer(block + 192).assumingMemoryBound(to: Int8.self)
        for _ in 0..<2 {
            for l in 0..<32 {
                let s = l / 16
                let q1 = Int(ql[l] & 0xF | (qh[l] & 3) << 4) - 32
                let q2 = Int(ql[l + 32] & 0xF | (qh[l] >> 2 & 3) << 4) - 32
                let q3 = Int(ql[l] >> 4 | (qh[l] >> 4 & 3) << 4) - 32
                let q4 = Int(ql[l + 32] >> 4 | (qh[l] >> 6 & 3) << 4) - 32
                out[l] = d * Float(sc[s]) * Float(q1)
                out[l + 32] = d * Float(sc[s + 2]) * Float(q2)
                out[l + 64] = d * Float(sc[s + 4]) * Float(q3)
                out[l + 96] = d * Float(sc[s + 6]) * Float(q4)
            }
            ql += 64
            qh += 32
            sc += 8
            out += 128
        }
    }
}

/// Float32 to f16 bits (round to nearest even), as ggml stores scales and F16 tensors.
@inline(__always) func f16Bits(_ x: Float) -> UInt16 { Float16(x).bitPattern }

/// Quantises whole rows of 32 to Q8_0 as ggml's `quantize_row_q8_0_ref` does: d = max|x|/127,
/// q = round(x/d) (half away from zero, through the f32 reciprocal), d stored as f16.
func quantizeQ8_0(_ x: UnsafePointer<Float>, count: Int) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count / 32 * 34)
    out.withUnsafeMutableBufferPointer { o in
        for b in 0..<count / 32 {
            let v = x + 32 * b, block = o.baseAddress! + 34 * b
            var amax: Float = 0
            for j in 0..<32 { amax = max(amax, abs(v[j])) }
            let d = amax / 127, id: Float = d != 0 ? 1 / d : 0
            let bits = f16Bits(d)
            block[0] = UInt8(bits & 0xFF); block[1] = UInt8(bits >> 8)
            for j in 0..<32 { block[2 + j] = UInt8(bitPattern: Int8((v[j] * id).rounded())) }
        }
    }
    return out
}
