/// Converts `count` little-endian values of a safetensors dtype at `src` to float32.
/// bf16 is the top half of a float32; f16 goes through Swift's Float16 (IEEE binary16).
func convertToFloat32(_ src: UnsafeRawPointer, dtype: String, count: Int, into dst: UnsafeMutablePointer<Float>) {
    switch dtype {
    case "F32":
        for i in 0..<count { dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
    case "BF16":
        for i in 0..<count {
            let bits = UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            dst[i] = Float(bitPattern: UInt32(bits) << 16)
        }
    case "F16":
        for i in 0..<count {
            let bits = UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            dst[i] = Float(Float16(bitPattern: bits))
        }
    case "F64":
        for i in 0..<count { dst[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
    default:
        preconditionFailure("convertToFloat32: unchecked dtype \(dtype)")
    }
}

/// Rounds float32 to bfloat16 bits (round to nearest even): bf16 test files, and float32
/// moments loaded into AdamW's bfloat16 storage.
public func bfloat16Bits(_ x: Float) -> UInt16 {
    let bits = x.bitPattern
    if x.isNaN { return 0x7FC0 }
    let rounding = 0x7FFF + ((bits >> 16) & 1)
    return UInt16((bits &+ rounding) >> 16)
}
