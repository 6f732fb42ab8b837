import Foundation
import GroveTensor

/// Errors reading a GGUF file; each names the file.
public enum GGUFError: Error, CustomStringConvertible {
    case unreadable(file: String, reason: String)
    case corrupt(file: String, reason: String)
    case badTensor(file: String, tensor: String, reason: String)
    case unsupportedType(file: String, tensor: String, type: UInt32)

    public var description: String {
        switch self {
        case .unreadable(let f, let r): return "\(f): cannot read: \(r)"
        case .corrupt(let f, let r): return "\(f): not a valid GGUF file: \(r)"
        case .badTensor(let f, let t, let r): return "\(f): tensor '\(t)': \(r)"
        case .unsupportedType(let f, let t, let type):
            let name = GGMLType(rawValue: type).map { "\($0)" } ?? "ggml type \(type)"
            return "\(f): tensor '\(t)' is \(name); Grove reads \(GGMLType.allCases.map { "\($0)" }.joined(separator: ", "))"
        }
    }
}

/// One metadata value. The cases are GGUF's value types (ids 0–12), so a value writes back as it was read.
public enum GGUFValue: Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32), float32(Float)
    case bool(Bool), string(String)
    /// The element type id, then the elements (all of that type).
    case array(UInt32, [GGUFValue])
    case uint64(UInt64), int64(Int64), float64(Double)

    /// GGUF's id of this value's type.
    public var typeId: UInt32 {
        switch self {
        case .uint8: return 0
        case .int8: return 1
        case .uint16: return 2
        case .int16: return 3
        case .uint32: return 4
        case .int32: return 5
        case .float32: return 6
        case .bool: return 7
        case .string: return 8
        case .array: return 9
        case .uint64: return 10
        case .int64: return 11
        case .float64: return 12
        }
    }

    /// An integer value of any width, nil for other types (or a UInt64 beyond Int).
    public var int: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return Int(exactly: v)
        case .int64(let v): return Int(v)
        default: return nil
        }
    }

    /// A number of any type.
    public var double: Double? {
        switch self {
        case .float32(let v): return Double(v)
        case .float64(let v): return v
        default: return int.map(Double.init)
        }
    }

    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var array: [GGUFValue]? { if case .array(_, let a) = self { return a } else { return nil } }
}

/// One tensor's entry in the header: `dims` in GGUF's order (dims[0] varies fastest, the
/// reverse of the PyTorch shape); `offset` from the start of the data section.
public struct GGUFTensorInfo {
    public let name: String
    public let dims: [Int]
    public let type: GGMLType
    public let offset: Int
    public let byteCount: Int

    /// The shape in PyTorch's (row-major) order.
    public var shape: [Int] { dims.reversed() }
}

/// A GGUF file (llama.cpp's single-file model format), memory-mapped:
///
///     "GGUF"  u32 version (2 or 3)  u64 tensor_count  u64 kv_count
///     kv_count × (string key, u32 value type, value)
///     tensor_count × (string name, u32 n_dims, n_dims × u64 dim, u32 ggml type, u64 offset)
///     padding to `general.alignment` (default 32), then the tensor data, each tensor aligned.
///
/// Strings are a u64 byte count and UTF-8 bytes; arrays a u32 element type, a u64 count and
/// the elements. All little-endian. Every count, size and offset is checked against the file.
public struct GGUFFile {
    public let path: String
    public let version: UInt32
    /// The metadata in file order.
    public let metadata: [(key: String, value: GGUFValue)]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    let data: Data
    let dataStart: Int
    let index: [String: Int]

    /// True for a path that names a `.gguf` file (not a folder).
    public static func isGGUF(_ url: URL) -> Bool {
        var isDir: ObjCBool = false
        return url.pathExtension.lowercased() == "gguf" && (!FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) || !isDir.boolValue)
    }

    public init(_ url: URL) throws {
        path = url.path
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw GGUFError.unreadable(file: path, reason: FileManager.default.fileExists(atPath: path) ? error.localizedDescription : "no such file")
        }
        var r = GGUFCursor(data: data, file: path)
        guard data.count >= 4, data.prefix(4) == Data("GGUF".utf8) else { throw GGUFError.corrupt(file: path, reason: "no GGUF magic") }
        r.position = 4
        version = try r.u32()
        guard version == 2 || version == 3 else { throw r.fail("version \(version); Grove reads versions 2 and 3") }
        let tensorCount = try r.u64(), kvCount = try r.u64()
        // Each entry takes at least 8 bytes, so larger counts cannot fit in the file.
        guard tensorCount <= UInt64(data.count / 8), kvCount <= UInt64(data.count / 8) else {
            throw r.fail("\(tensorCount) tensors and \(kvCount) metadata entries cannot fit in \(data.count) bytes")
        }
        var metadata: [(key: String, value: GGUFValue)] = []
        var seen = Set<String>()
        for _ in 0..<Int(kvCount) {
            let key = try r.string()
            guard seen.insert(key).inserted else { throw r.fail("metadata key '\(key)' appears twice") }
            metadata.append((key, try r.value(type: try r.u32(), depth: 0)))
        }
        self.metadata = metadata
        let alignmentValue = metadata.first { $0.key == "general.alignment" }?.value
        alignment = alignmentValue?.int ?? 32
        guard alignment > 0, alignment & (alignment - 1) == 0, alignment <= 1 << 20 else {
            throw r.fail("general.alignment \(String(describing: alignmentValue)) is not a power of two")
        }

        var infos: [(name: String, dims: [Int], type: UInt32, offset: UInt64)] = []
        for _ in 0..<Int(tensorCount) {
            let name = try r.string()
            let nDims = try r.u32()
            guard (1...4).contains(nDims) else { throw GGUFError.badTensor(file: path, tensor: name, reason: "\(nDims) dimensions (1 to 4 allowed)") }
            var dims: [Int] = []
            for _ in 0..<nDims {
                let d = try r.u64()
                guard d > 0, d <= UInt64(Int32.max) else { throw GGUFError.badTensor(file: path, tensor: name, reason: "dimension \(d) out of range") }
                dims.append(Int(d))
            }
            infos.append((name, dims, try r.u32(), try r.u64()))
        }
        let (start, overflow) = r.position.addingReportingOverflow(alignment - 1)
        dataStart = overflow ? Int.max : start / alignment * alignment
        let dataSize = data.count - min(dataStart, data.count)

        var tensors: [GGUFTensorInfo] = []
        var index: [String: Int] = [:]
        for info in infos {
            func bad(_ reason: String) -> GGUFError { GGUFError.badTensor(file: url.path, tensor: info.name, reason: reason) }
            guard let type = GGMLType(rawValue: info.type) else { throw GGUFError.unsupportedType(file: path, tensor: info.name, type: info.type) }
            guard index[info.name] == nil else { throw bad("appears twice") }
            var count = 1
            for d in info.dims {
                let (p, o) = count.multipliedReportingOverflow(by: d)
                guard !o else { throw bad("element count of \(info.dims) overflows") }
                count = p
            }
            guard info.dims[0] % type.blockSize == 0 else { throw bad("row length \(info.dims[0]) is not a multiple of \(type)'s block of \(type.blockSize)") }
            let (bytes, o) = (count / type.blockSize).multipliedReportingOverflow(by: type.blockBytes)
            guard !o else { throw bad("byte size overflows") }
            guard info.offset % UInt64(alignment) == 0 else { throw bad("data offset \(info.offset) is not a multiple of the alignment \(alignment)") }
            guard info.offset <= UInt64(dataSize), UInt64(bytes) <= UInt64(dataSize) - info.offset else {
                throw bad("data [\(info.offset), +\(bytes)) runs past the end of the file's \(dataSize) data bytes: truncated?")
            }
            index[info.name] = tensors.count
            tensors.append(GGUFTensorInfo(name: info.name, dims: info.dims, type: type, offset: Int(info.offset), byteCount: bytes))
        }
        self.tensors = tensors
        self.index = index
    }

    /// The value of a metadata key.
    public subscript(key: String) -> GGUFValue? { metadata.first { $0.key == key }?.value }

    /// The entry of a tensor by name.
    public func info(_ name: String) -> GGUFTensorInfo? { index[name].map { tensors[$0] } }

    /// A tensor dequantised to float32, in PyTorch's shape.
    public func tensor(_ info: GGUFTensorInfo) -> Tensor {
        let t = Tensor(zeros: info.shape)
        data.withUnsafeBytes { raw in
            dequantize(info.type, raw.baseAddress! + dataStart + info.offset, count: t.count, into: t.data)
        }
        return t
    }

    /// The raw bytes of a tensor as stored.
    public func bytes(_ info: GGUFTensorInfo) -> Data { data.subdata(in: dataStart + info.offset ..< dataStart + info.offset + info.byteCount) }
}

/// Bounds-checked little-endian reads from the header.
struct GGUFCursor {
    let data: Data
    let file: String
    var position = 0

    func fail(_ reason: String) -> GGUFError { GGUFError.corrupt(file: file, reason: reason + " (at byte \(position))") }

    mutating func take(_ n: Int) throws -> Range<Int> {
        guard n >= 0, n <= data.count - position else { throw fail("needs \(n) more bytes but the file ends at \(data.count): truncated?") }
        defer { position += n }
        return position ..< position + n
    }

    mutating func load<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let r = try take(MemoryLayout<T>.size)
        return data.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: r.lowerBound, as: T.self)) }
    }

    mutating func u32() throws -> UInt32 { try load(UInt32.self) }
    mutating func u64() throws -> UInt64 { try load(UInt64.self) }

    mutating func string() throws -> String {
        let n = try u64()
        guard n <= UInt64(data.count - position) else { throw fail("string of \(n) bytes runs past the end of the file") }
        return String(decoding: data[try take(Int(n))], as: UTF8.self)
    }

    /// Smallest encoding of a value of `type`, to bound array counts by the bytes left.
    static func minimumSize(_ type: UInt32) -> Int {
        switch type {
        case 0, 1, 7: return 1
        case 2, 3: return 2
        case 4, 5, 6: return 4
        case 9: return 12
        default: return 8
        }
    }

    mutating func value(type: UInt32, depth: Int) throws -> GGUFValue {
        switch type {
        case 0: return .uint8(try load(UInt8.self))
        case 1: return .int8(try load(Int8.self))
        case 2: return .uint16(try load(UInt16.self))
        case 3: return .int16(try load(Int16.self))
        case 4: return .uint32(try u32())
        case 5: return .int32(try load(Int32.self))
        case 6: return .float32(Float(bitPattern: try u32()))
        case 7:
            let b = try load(UInt8.self)
            guard b <= 1 else { throw fail("bool value \(b)") }
            return .bool(b == 1)
        case 8: return .string(try string())
        case 9:
            guard depth < 4 else { throw fail("arrays nested deeper than 4") }
            let elementType = try u32(), n = try u64()
            guard elementType <= 12 else { throw fail("unknown array element type \(elementType)") }
            guard n <= UInt64((data.count - position) / GGUFCursor.minimumSize(elementType)) else {
                throw fail("array of \(n) elements runs past the end of the file")
            }
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(n))
            for _ in 0..<Int(n) { items.append(try value(type: elementType, depth: depth + 1)) }
            return .array(elementType, items)
        case 10: return .uint64(try u64())
        case 11: return .int64(try load(Int64.self))
        case 12: return .float64(Double(bitPattern: try u64()))
        default: throw fail("unknown metadata value type \(type)")
        }
    }
}
