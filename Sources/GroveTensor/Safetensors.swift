import Foundation

/// Errors reading or writing tensor files; each names the file and, where known, the tensor.
public enum SafetensorsError: Error, CustomStringConvertible {
    case unreadable(file: String, reason: String)
    case corrupt(file: String, reason: String)
    case badTensor(file: String, tensor: String, reason: String)
    case unsupportedDtype(file: String, tensor: String, dtype: String)
    case unwritable(file: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let f, let r): return "\(f): cannot read: \(r)"
        case .corrupt(let f, let r): return "\(f): not a valid safetensors file: \(r)"
        case .badTensor(let f, let t, let r): return "\(f): tensor '\(t)': \(r)"
        case .unsupportedDtype(let f, let t, let d):
            return "\(f): tensor '\(t)' has dtype \(d); Grove reads F32, F16, BF16 and F64"
        case .unwritable(let f, let r): return "\(f): cannot write: \(r)"
        }
    }
}

/// The safetensors format: an 8-byte little-endian header size, a JSON header mapping each
/// name to {dtype, shape, data_offsets: [begin, end]} (relative to the end of the header),
/// then the raw little-endian data.
public enum SafetensorsFile {
    /// Every tensor of `url`, converted to float32, in the file's data order.
    public static func read(_ url: URL) throws -> [(String, Tensor)] {
        let path = url.path
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw SafetensorsError.unreadable(file: path, reason: FileManager.default.fileExists(atPath: path) ? "\(error.localizedDescription)" : "no such file")
        }
        var out: [(String, Tensor)] = []
        for e in try entries(of: data, file: path) {
            let tensor = Tensor(zeros: e.shape)
            data.withUnsafeBytes { raw in
                convertToFloat32(raw.baseAddress! + e.begin, dtype: e.dtype, count: tensor.count, into: tensor.data)
            }
            out.append((e.name, tensor))
        }
        return out
    }

    /// A tensor's header entry, checked; `begin..<end` are absolute byte offsets in the file.
    struct Entry { let name: String, dtype: String, shape: [Int], begin: Int, end: Int }

    /// The header's tensors in data order, checked as the reference library's `validate` does:
    /// known dtypes, shapes whose byte size matches their data_offsets, and data ranges that tile the
    /// rest of the file exactly (no overlap, no gap, nothing missing or left over). The arithmetic
    /// reports overflow instead of wrapping: release builds of the kernels trust these numbers.
    static func entries(of data: Data, file path: String) throws -> [Entry] {
        guard data.count >= 8 else { throw SafetensorsError.corrupt(file: path, reason: "shorter than its 8-byte header size") }
        let headerSize = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerSize <= UInt64(data.count - 8), headerSize < 100_000_000 else {
            throw SafetensorsError.corrupt(file: path, reason: "header size \(headerSize) exceeds the file (\(data.count) bytes): truncated?")
        }
        let headerEnd = 8 + Int(headerSize), dataSize = data.count - headerEnd
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<headerEnd)) as? [String: Any] else {
            throw SafetensorsError.corrupt(file: path, reason: "the header is not a JSON object")
        }
        var entries: [Entry] = []
        for (name, value) in header where name != "__metadata__" {
            func bad(_ reason: String) -> SafetensorsError { .badTensor(file: path, tensor: name, reason: reason) }
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2 else {
                throw bad("header entry lacks dtype, shape or data_offsets")
            }
            guard let width = dtypeWidth(dtype) else { throw SafetensorsError.unsupportedDtype(file: path, tensor: name, dtype: dtype) }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw bad("negative dimension in \(shape)") }
            var bytes = width
            for d in shape {
                let (product, overflow) = bytes.multipliedReportingOverflow(by: d)
                guard !overflow else { throw bad("shape \(shape) of \(dtype) overflows a byte count") }
                bytes = product
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, end >= begin, end - begin == bytes else {
                throw bad("data_offsets [\(begin), \(end)] do not hold \(shape) of \(dtype) (\(bytes) bytes)")
            }
            guard end <= dataSize else {
                throw bad("data ends at byte \(end) of the data section but the file holds \(dataSize): truncated")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, begin: headerEnd + begin, end: headerEnd + end))
        }
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var next = headerEnd  // where the next tensor's data must start
        for (i, e) in entries.enumerated() {
            if e.begin < next {
                throw SafetensorsError.badTensor(file: path, tensor: e.name, reason: "data_offsets overlap those of '\(entries[i - 1].name)'")
            }
            if e.begin > next {
                throw SafetensorsError.badTensor(file: path, tensor: e.name, reason: "bytes \(next - headerEnd)..<\(e.begin - headerEnd) before its data belong to no tensor")
            }
            next = e.end
        }
        guard next == data.count else {
            throw SafetensorsError.corrupt(file: path, reason: "\(data.count - next) bytes after the last tensor's data belong to no tensor")
        }
        return entries
    }

    static func dtypeWidth(_ dtype: String) -> Int? {
        switch dtype {
        case "F32": return 4
        case "F16", "BF16": return 2
        case "F64": return 8
        default: return nil
        }
    }

    /// Writes float32 tensors, sorted by name as the Python library does, atomically
    /// (a temporary file renamed into place, so a crash never leaves a half-written file).
    /// Each tensor goes to the file from its own storage: no copy of the whole file is held in
    /// memory (for a 135M model's checkpoint that copy was 0.5 GB of weights, 1 GB of moments).
    public static func write(_ tensors: [(String, Tensor)], to url: URL, metadata: [String: String] = ["format": "pt"]) throws {
        try write(tensors.map { ($0.0, $0.1.shape) }, to: url, metadata: metadata) { i, file in
            let t = tensors[i].1
            try file.write(contentsOf: Data(bytesNoCopy: t.data, count: t.count * 4, deallocator: .none))
        }
    }

    /// Writes float32 tensors made a piece at a time: `fill(i, range, values)` puts elements
    /// `range` of entry i into `values` (of range.count), a buffer of at most `chunk` floats reused
    /// for every piece. For values held in another form (AdamW's bfloat16 moments) without a
    /// float32 copy of them, or of the largest of them.
    public static func write(_ entries: [(String, shape: [Int])], to url: URL, chunk: Int = 1 << 20,
                             fill: (Int, Range<Int>, UnsafeMutableBufferPointer<Float>) -> Void) throws {
        var scratch = [Float](repeating: 0, count: min(chunk, entries.map { $0.shape.reduce(1, *) }.max() ?? 0))
        try write(entries, to: url, metadata: ["format": "pt"]) { i, file in
            let count = entries[i].shape.reduce(1, *)
            try scratch.withUnsafeMutableBufferPointer { buffer in
                for start in stride(from: 0, to: count, by: buffer.count) {
                    let piece = start..<min(start + buffer.count, count)
                    fill(i, piece, UnsafeMutableBufferPointer(rebasing: buffer[..<piece.count]))
                    try file.write(contentsOf: Data(bytesNoCopy: buffer.baseAddress!, count: piece.count * 4, deallocator: .none))
                }
            }
        }
    }

    /// The header of `entries` sorted by name, then `writeData(i, file)` for each non-empty
    /// entry i in that order, which must write its count × 4 bytes.
    private static func write(_ entries: [(String, shape: [Int])], to url: URL, metadata: [String: String],
                              writeData: (Int, FileHandle) throws -> Void) throws {
        let order = entries.indices.sorted { entries[$0].0 < entries[$1].0 }
        var header = "{\"__metadata__\":" + jsonObject(metadata)
        var offset = 0
        for i in order {
            let (name, shape) = entries[i], bytes = shape.reduce(1, *) * 4
            header += ",\(jsonString(name)):{\"dtype\":\"F32\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}"
            offset += bytes
        }
        header += "}"
        while header.utf8.count % 8 != 0 { header += " " }  // data starts 8-byte aligned
        var head = Data(capacity: 8 + header.utf8.count)
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { head.append(contentsOf: $0) }
        head.append(contentsOf: Array(header.utf8))
        try writeAtomically(to: url) { file in
            try file.write(contentsOf: head)
            for i in order where entries[i].shape.reduce(1, *) > 0 { try writeData(i, file) }
        }
    }
}

/// Writes `data` to a temporary sibling and renames it over `url`.
public func writeAtomically(_ data: Data, to url: URL) throws {
    try writeAtomically(to: url) { try $0.write(contentsOf: data) }
}

/// Has `write` fill a temporary sibling of `url`, then renames it over `url`.
public func writeAtomically(to url: URL, _ write: (FileHandle) throws -> Void) throws {
    let temp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
    do {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let fd = open(temp.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let file = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
        do { try write(file); try file.close() } catch { try? file.close(); throw error }
        if rename(temp.path, url.path) != 0 { throw CocoaError(.fileWriteUnknown) }
    } catch {
        try? FileManager.default.removeItem(at: temp)
        throw SafetensorsError.unwritable(file: url.path, reason: error.localizedDescription)
    }
}

func jsonString(_ s: String) -> String {
    let data = try? JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])
    let array = data.flatMap { String(data: $0, encoding: .utf8) } ?? "[\"\"]"
    return String(array.dropFirst().dropLast())
}

func jsonObject(_ d: [String: String]) -> String {
    "{" + d.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }.joined(separator: ",") + "}"
}
