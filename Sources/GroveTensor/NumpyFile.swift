import Foundation

/// NumPy `.npy` files (format 1.0) of float32 arrays in C order.
public enum NumpyFile {
    /// Writes `t` as '<f4' with its shape.
    public static func write(_ t: Tensor, to url: URL) throws {
        let shape = t.shape.count == 1 ? "(\(t.shape[0]),)" : "(" + t.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"
        // magic (6) + version (2) + header length (2) + header, padded with spaces to 64 bytes, ending in \n.
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        withUnsafeBytes(of: UInt16(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(header.utf8))
        data.append(UnsafeBufferPointer(start: t.data, count: t.count))
        try writeAtomically(data, to: url)
    }

    /// Reads a '<f4' or '<f8' C-order array as a float32 tensor.
    public static func read(_ url: URL) throws -> Tensor {
        let path = url.path
        guard let data = FileManager.default.contents(atPath: path) else { throw SafetensorsError.unreadable(file: path, reason: "no such file") }
        guard data.count >= 10, data.prefix(6) == Data([0x93] + Array("NUMPY".utf8)) else {
            throw SafetensorsError.corrupt(file: path, reason: "not a .npy file")
        }
        let major = data[data.startIndex + 6]
        let lengthBytes = major == 1 ? 2 : 4
        var headerLength = 0
        for i in 0..<lengthBytes { headerLength |= Int(data[data.startIndex + 8 + i]) << (8 * i) }
        let start = 8 + lengthBytes
        guard start + headerLength <= data.count, let header = String(data: data.subdata(in: start..<start + headerLength), encoding: .ascii) else {
            throw SafetensorsError.corrupt(file: path, reason: "truncated header")
        }
        guard !header.contains("'fortran_order': True") else { throw SafetensorsError.corrupt(file: path, reason: "Fortran order is not supported") }
        let dtype = header.contains("'<f4'") ? "F32" : header.contains("'<f8'") ? "F64" : ""
        guard !dtype.isEmpty else { throw SafetensorsError.unsupportedDtype(file: path, tensor: "array", dtype: header) }
        guard let open = header.firstIndex(of: "("), let close = header.firstIndex(of: ")") else {
            throw SafetensorsError.corrupt(file: path, reason: "no shape in header")
        }
        let shape = header[header.index(after: open)..<close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let t = Tensor(zeros: shape)
        let body = start + headerLength, width = dtype == "F32" ? 4 : 8
        guard data.count - body == t.count * width else { throw SafetensorsError.corrupt(file: path, reason: "data size does not match shape \(shape)") }
        data.withUnsafeBytes { convertToFloat32($0.baseAddress! + body, dtype: dtype, count: t.count, into: t.data) }
        return t
    }
}
