import CGroveKernels

/// `count` bfloat16 values (2 bytes each: the top half of a float32), zero-filled, from the
/// tensor heap like tensor storage: AdamW's moments when it keeps them in 16 bits.
final class BFloat16Buffer {
    let base: UnsafeMutablePointer<UInt16>
    let count: Int

    init(count: Int) {
        self.count = count
        base = grove_alloc(max(count, 1) * 2).bindMemory(to: UInt16.self, capacity: max(count, 1))
        base.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { grove_free(base, max(count, 1) * 2) }

    /// The values as a float32 tensor of `shape`: exact, as every bfloat16 is a float32.
    func tensor(shape: [Int]) -> Tensor {
        let t = Tensor(uninitialized: shape)
        copyValues(0..<count, into: t.buffer)
        return t
    }

    /// Writes values `range`, as float32, into `out` (of range.count elements).
    func copyValues(_ range: Range<Int>, into out: UnsafeMutableBufferPointer<Float>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= count && out.count == range.count,
                     "BFloat16Buffer: \(out.count) floats for values \(range) of \(count)")
        for (j, i) in range.enumerated() { out[j] = Float(bitPattern: UInt32(base[i]) << 16) }
    }

    /// Stores `values` rounded to the nearest bfloat16: exact for values `tensor` gave.
    func store(_ values: Tensor) {
        precondition(values.count == count, "BFloat16Buffer: \(values.count) values for \(count)")
        for i in 0..<count { base[i] = bfloat16Bits(values.data[i]) }
    }
}
