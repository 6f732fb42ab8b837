import Foundation
import GroveTensor

/// Writes a GGUF file (version 3, alignment 32): the layout `GGUFFile` reads.
public struct GGUFWriter {
    public var metadata: [(String, GGUFValue)] = []
    /// Tensors as stored: name, dims in GGUF order, type, bytes.
    var tensors: [(name: String, dims: [Int], type: GGMLType, bytes: Data)] = []
    static let alignment = 32

    public init() {}

    /// Adds a float32 tensor stored as `type` (f32, f16 or q8_0; q8_0 needs rows of a multiple of 32).
    public mutating func add(_ name: String, _ t: Tensor, as type: GGMLType) {
        let bytes: Data
        switch type {
        case .f32: bytes = Data(buffer: UnsafeBufferPointer(start: t.data, count: t.count))
        case .f16: bytes = (0..<t.count).map { f16Bits(t.data[$0]) }.withUnsafeBufferPointer { Data(buffer: $0) }
        case .q8_0: bytes = Data(quantizeQ8_0(t.data, count: t.count))
        default: preconditionFailure("GGUFWriter: Grove writes F32, F16 and Q8_0, not \(type)")
        }
        tensors.append((name, t.shape.reversed(), type, bytes))
    }

    /// The file's bytes.
    public func encoded() -> Data {
        var out = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func string(_ s: String) { u64(UInt64(s.utf8.count)); out.append(contentsOf: Array(s.utf8)) }
        func value(_ v: GGUFValue) {
            switch v {
            case .uint8(let x): out.append(x)
            case .int8(let x): out.append(UInt8(bitPattern: x))
            case .uint16(let x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case .int16(let x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case .uint32(let x): u32(x)
            case .int32(let x): u32(UInt32(bitPattern: x))
            case .float32(let x): u32(x.bitPattern)
            case .bool(let b): out.append(b ? 1 : 0)
            case .string(let s): string(s)
            case .array(let type, let items): u32(type); u64(UInt64(items.count)); items.forEach(value)
            case .uint64(let x): u64(x)
            case .int64(let x): u64(UInt64(bitPattern: x))
            case .float64(let x): u64(x.bitPattern)
            }
        }
        func pad() { out.append(contentsOf: [UInt8](repeating: 0, count: (GGUFWriter.alignment - out.count % GGUFWriter.alignment) % GGUFWriter.alignment)) }

        out.append(contentsOf: Array("GGUF".utf8))
        u32(3)
        u64(UInt64(tensors.count))
        u64(UInt64(metadata.count))
        for (key, v) in metadata { string(key); u32(v.typeId); value(v) }
        var offset = 0
        for t in tensors {
            string(t.name)
            u32(UInt32(t.dims.count))
            t.dims.forEach { u64(UInt64($0)) }
            u32(t.type.rawValue)
            u64(UInt64(offset))
            offset += (t.bytes.count + GGUFWriter.alignment - 1) / GGUFWriter.alignment * GGUFWriter.alignment
        }
        pad()
        for t in tensors { out.append(t.bytes); pad() }
        return out
    }

    /// Writes the file atomically.
    public func write(to url: URL) throws { try writeAtomically(encoded(), to: url) }
}

extension Transformer {
    /// The model as a GGUF file llama.cpp runs: llama or qwen2 metadata, the tokenizer of
    /// `tokenizer` (a model folder, or a .gguf file whose tokenizer metadata is copied), matrices
    /// as `type` (f16 or q8_0; q8_0 falls back to f16 for rows not a multiple of 32), norms and
    /// biases f32, Llama's q/k rows in llama.cpp's order.
    public func ggufWriter(type: GGMLType, tokenizer: URL, name: String) throws -> GGUFWriter {
        precondition(type == .f16 || type == .q8_0, "ggufWriter: f16 or q8_0")
        guard config.attention == .grouped && config.feedForward == .dense else {
            throw ModelError.unsupported(file: nameOrPath ?? name, key: "model_type", value: config.modelType.rawValue, supported: "llama, qwen2 (GGUF export)")
        }
        let c = config, arch = c.modelType.rawValue
        var w = GGUFWriter()
        w.metadata = [
            ("general.architecture", .string(arch)), ("general.name", .string(name)),
            ("general.file_type", .uint32(type == .f16 ? 1 : 7)), ("general.quantization_version", .uint32(2)),
            ("\(arch).vocab_size", .uint32(UInt32(c.vocabSize))),
            ("\(arch).context_length", .uint32(UInt32(c.maxPositionEmbeddings))),
            ("\(arch).embedding_length", .uint32(UInt32(c.hiddenSize))),
            ("\(arch).block_count", .uint32(UInt32(c.numHiddenLayers))),
            ("\(arch).feed_forward_length", .uint32(UInt32(c.intermediateSize))),
            ("\(arch).attention.head_count", .uint32(UInt32(c.numAttentionHeads))),
            ("\(arch).attention.head_count_kv", .uint32(UInt32(c.numKeyValueHeads))),
            ("\(arch).attention.key_length", .uint32(UInt32(c.headDim))),
            ("\(arch).attention.value_length", .uint32(UInt32(c.headDim))),
            ("\(arch).rope.dimension_count", .uint32(UInt32(c.headDim))),
            ("\(arch).rope.freq_base", .float32(Float(c.ropeTheta))),
            ("\(arch).attention.layer_norm_rms_epsilon", .float32(Float(c.rmsNormEps))),
        ]
        if GGUFFile.isGGUF(tokenizer) {
            w.metadata += try GGUFFile(tokenizer).metadata.filter { $0.key.hasPrefix("tokenizer.") }.map { ($0.key, $0.value) }
        } else {
            w.metadata += try GGUFTokenizer.metadata(folder: tokenizer, config: c)
        }
        for (hf, t) in namedParameters {
            let name = GGUFNames.ggufName(hf)
            var tensor = t
            if c.modelType == .llama && (name.contains(".attn_q.") || name.contains(".attn_k.")) {
                tensor = permuteRoPERows(t, heads: name.contains(".attn_q.") ? c.numAttentionHeads : c.numKeyValueHeads, toGGUF: true)
            }
            let matrix = t.shape.count == 2
            w.add(name, tensor, as: !matrix ? .f32 : type == .q8_0 && t.shape[1] % 32 == 0 ? .q8_0 : .f16)
        }
        return w
    }
}
