import Foundation
import GroveTestSupport
import XCTest
@testable import GroveTensor

final class SafetensorsTests: XCTestCase {
    func temp(_ name: String) -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("grove-st-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(name)
    }

    /// A safetensors file with one tensor of raw bytes under `dtype`, or a broken header.
    func rawFile(dtype: String, shape: [Int], bytes: [UInt8], offsets: [Int]? = nil) throws -> URL {
        let end = offsets ?? [0, bytes.count]
        var header = "{\"w\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":[\(end[0]),\(end[1])]}}"
        while header.utf8.count % 8 != 0 { header += " " }
        var data = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(header.utf8))
        data.append(contentsOf: bytes)
        let url = temp("t.safetensors")
        try data.write(to: url)
        return url
    }

    func testRoundTrip() throws {
        var rng = SeededRandom(seed: 3)
        let a = Tensor.randn([3, 5], rng: &rng), b = Tensor.randn([7], rng: &rng)
        let url = temp("x.safetensors")
        try SafetensorsFile.write([("b.weight", b), ("a.weight", a)], to: url)
        let back = Dictionary(uniqueKeysWithValues: try SafetensorsFile.read(url))
        XCTAssertEqual(back["a.weight"]?.shape, [3, 5])
        XCTAssertEqual(back["a.weight"]?.values, a.values)
        XCTAssertEqual(back["b.weight"]?.values, b.values)
    }

    /// Entries made piece by piece (`write(_:to:chunk:fill:)`) through a buffer smaller than
    /// them, in pieces that do not divide them, are written whole and in order.
    func testEntriesFilledInPieces() throws {
        let url = temp("pieces.safetensors")
        let entries: [(String, shape: [Int])] = [("b", shape: [3, 3]), ("a", shape: [2]), ("e", shape: [0])]
        var asked: [[Int]] = []
        try SafetensorsFile.write(entries, to: url, chunk: 4) { i, range, values in
            asked.append([i, range.lowerBound, range.upperBound])
            for (j, k) in range.enumerated() { values[j] = Float(100 * i + k) }
        }
        XCTAssertEqual(asked, [[1, 0, 2], [0, 0, 4], [0, 4, 8], [0, 8, 9]], "name order, pieces of at most 4")
        let read = Dictionary(uniqueKeysWithValues: try SafetensorsFile.read(url).map { ($0.0, $0.1) })
        XCTAssertEqual(read["b"]?.values, (0..<9).map(Float.init))
        XCTAssertEqual(read["b"]?.shape, [3, 3])
        XCTAssertEqual(read["a"]?.values, [100, 101])
        XCTAssertEqual(read["e"]?.count, 0)
    }

    /// The file is written tensor by tensor: its bytes are the 8-byte header length, the header,
    /// then the tensors' float32 bytes in name order; an empty tensor takes none. A folder that
    /// cannot be made is an error naming the file, and leaves no temporary file behind.
    func testWrittenLayoutAndUnwritablePath() throws {
        let url = temp("layout.safetensors")
        try SafetensorsFile.write([("z", Tensor([1.5, -2], shape: [2])), ("e", Tensor(zeros: [0])), ("a", Tensor([3], shape: [1]))], to: url)
        let data = try Data(contentsOf: url)
        let headerLength = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        XCTAssertEqual(headerLength % 8, 0)
        let floats = data.dropFirst(8 + headerLength).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(floats, [3, 1.5, -2], "a, then z; e holds nothing")
        XCTAssertEqual(try SafetensorsFile.read(url).map(\.0), ["a", "e", "z"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path), ["layout.safetensors"])

        let blocked = url.appendingPathComponent("under-a-file.safetensors")  // its folder is a file
        XCTAssertThrowsError(try SafetensorsFile.write([("a", Tensor([3], shape: [1]))], to: blocked)) {
            XCTAssertTrue("\($0)".hasPrefix("\(blocked.path): cannot write: "), "\($0)")
        }
    }

    func testBFloat16AndFloat16Decoding() throws {
        // bf16: 1.0 = 0x3F80, -2.5 = 0xC020, 0.1 ≈ 0x3DCD (0.10009765625), +inf = 0x7F80
        let bf = try SafetensorsFile.read(rawFile(dtype: "BF16", shape: [4], bytes: [0x80, 0x3F, 0x20, 0xC0, 0xCD, 0x3D, 0x80, 0x7F]))
        XCTAssertEqual(bf[0].1.values, [1.0, -2.5, 0.10009765625, .infinity])
        // f16: 1.0 = 0x3C00, -2.5 = 0xC100, smallest subnormal 2⁻²⁴ = 0x0001, 65504 = 0x7BFF
        let f16 = try SafetensorsFile.read(rawFile(dtype: "F16", shape: [2, 2], bytes: [0x00, 0x3C, 0x00, 0xC1, 0x01, 0x00, 0xFF, 0x7B]))
        XCTAssertEqual(f16[0].1.values, [1.0, -2.5, 5.9604645e-08, 65504])
        XCTAssertEqual(bfloat16Bits(-2.5), 0xC020)
    }

    func testFixtureModelNamesAndShapes() throws {
        let url = Fixtures.modelA.appendingPathComponent("model/model.safetensors")
        let tensors = Dictionary(uniqueKeysWithValues: try SafetensorsFile.read(url))
        XCTAssertEqual(tensors["model.embed_tokens.weight"]?.shape, [1024, 64])
        XCTAssertEqual(tensors["model.layers.1.self_attn.k_proj.bias"]?.shape, [32])
        XCTAssertEqual(tensors.count, 2 + 2 * 12)
    }

    func testTruncatedFileNamesFileAndTensor() throws {
        let url = try rawFile(dtype: "F32", shape: [4], bytes: [0, 0, 128, 63], offsets: [0, 16])
        XCTAssertThrowsError(try SafetensorsFile.read(url)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(url.path) && text.contains("'w'") && text.contains("truncated"), text)
        }
    }

    func testOffsetsThatDoNotFitTheShape() throws {
        let url = try rawFile(dtype: "F32", shape: [2], bytes: [UInt8](repeating: 0, count: 12), offsets: [0, 12])
        XCTAssertThrowsError(try SafetensorsFile.read(url)) { XCTAssertTrue("\($0)".contains("data_offsets"), "\($0)") }
    }

    func testUnsupportedDtype() throws {
        let url = try rawFile(dtype: "I8", shape: [2], bytes: [1, 2])
        XCTAssertThrowsError(try SafetensorsFile.read(url)) { XCTAssertTrue("\($0)".contains("I8") && "\($0)".contains("'w'"), "\($0)") }
    }

    func testHeaderLargerThanFile() throws {
        let url = temp("h.safetensors")
        var data = Data()
        withUnsafeBytes(of: UInt64(1000).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array("{}".utf8))
        try data.write(to: url)
        XCTAssertThrowsError(try SafetensorsFile.read(url)) { XCTAssertTrue("\($0)".contains("header size"), "\($0)") }
    }

    /// A safetensors file with a raw JSON header and `bytes` zero bytes of data.
    func file(header: String, bytes: Int) throws -> URL {
        var data = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(header.utf8))
        data.append(contentsOf: [UInt8](repeating: 0, count: bytes))
        let url = temp("f.safetensors")
        try data.write(to: url)
        return url
    }

    func assertRejected(_ url: URL, naming words: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafetensorsFile.read(url), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(url.path) && words.allSatisfy(text.contains), text, file: file, line: line)
        }
    }

    /// Offsets and shapes near 2^63 must not wrap: release builds trust the checked numbers.
    func testHugeOffsetsAndShapes() throws {
        assertRejected(try file(header: #"{"w":{"dtype":"F32","shape":[0],"data_offsets":[9223372036854775807,9223372036854775807]}}"#, bytes: 8),
                       naming: ["'w'"])
        assertRejected(try file(header: #"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}}"#, bytes: 16),
                       naming: ["'w'", "overflows"])
        assertRejected(try file(header: #"{"w":{"dtype":"F64","shape":[4294967296,4294967296,1],"data_offsets":[0,0]}}"#, bytes: 0),
                       naming: ["'w'", "overflows"])
    }

    func testHeaderSizeOfMinusOne() throws {
        let url = temp("m.safetensors")
        var data = Data()
        withUnsafeBytes(of: Int64(-1).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array("{}".utf8))
        try data.write(to: url)
        assertRejected(url, naming: ["header size"])
    }

    func testOverlappingTensors() throws {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        assertRejected(try file(header: header, bytes: 12), naming: ["'b'", "overlap", "'a'"])
    }

    func testBytesThatBelongToNoTensor() throws {
        assertRejected(try file(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, bytes: 16), naming: ["8 bytes after"])
        assertRejected(try file(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#, bytes: 16), naming: ["'w'", "0..<8"])
    }

    func testNumpyRoundTrip() throws {
        let t = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        let url = temp("a.npy")
        try NumpyFile.write(t, to: url)
        let back = try NumpyFile.read(url)
        XCTAssertEqual(back.shape, [2, 3])
        XCTAssertEqual(back.values, t.values)
        let data = try Data(contentsOf: url)
        XCTAssertEqual((data.count - 6 * 4) % 64, 0, "header padded to 64 bytes")
    }
}
