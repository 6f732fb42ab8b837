import Foundation
import GroveModel
import GroveRun
import GroveTensor
import GroveTestSupport
import GroveTokenizer
import XCTest
@testable import grove

/// Seeded mutations of the valid files in Tests/Fixtures/fuzz: every parse returns or throws, never
/// crashes (that would end the test process) or hangs (each parse is time-boxed). `GROVE_FUZZ_INPUTS`
/// sets the mutations per file (default 250) for longer runs.
final class ParserFuzzTests: XCTestCase {
    static let corpus = Fixtures.local.appendingPathComponent("fuzz")
    static let inputsPerFile = ProcessInfo.processInfo.environment["GROVE_FUZZ_INPUTS"].flatMap { Int($0) } ?? 250

    override func setUp() {
        _ = FileManager.default.changeCurrentDirectoryPath(Fixtures.repoRoot.path)  // the recipe names paths from the repository root
    }

    func testSafetensors() throws {
        try fuzz("model.safetensors", seed: 1, binary: true) { dir, bytes in
            let url = dir.appendingPathComponent("model.safetensors")
            try bytes.write(to: url)
            _ = try SafetensorsFile.read(url)
        }
    }

    func testTokenizer() throws {
        let json = try Data(contentsOf: Self.corpus.appendingPathComponent("tokenizer.json"))
        let config = try Data(contentsOf: Self.corpus.appendingPathComponent("tokenizer_config.json"))
        try fuzz("tokenizer.json", seed: 2) { dir, bytes in
            try bytes.write(to: dir.appendingPathComponent("tokenizer.json"))
            try config.write(to: dir.appendingPathComponent("tokenizer_config.json"))
            let tok = try Tokenizer(directory: dir)
            _ = tok.decode(tok.encode("Hi <|im_start|>user 12+3=15\n<|im_end|> ok"))
        }
        try fuzz("tokenizer_config.json", seed: 3) { dir, bytes in
            try json.write(to: dir.appendingPathComponent("tokenizer.json"))
            try bytes.write(to: dir.appendingPathComponent("tokenizer_config.json"))
            _ = try Tokenizer(directory: dir).encode("<|im_end|>", addSpecialTokens: true)
        }
    }

    func testModelConfig() throws {
        try fuzz("config.json", seed: 4) { dir, bytes in
            try bytes.write(to: dir.appendingPathComponent("config.json"))
            _ = try ModelConfig.load(from: dir).parameterCount()
        }
    }

    func testRecipe() throws {
        try fuzz("recipe.yaml", seed: 5) { dir, bytes in
            let url = dir.appendingPathComponent("recipe.yaml")
            try bytes.write(to: url)
            _ = try Recipe.load(path: url.path)
        }
    }

    /// Parses `inputsPerFile` mutations of the corpus file `name`, each within 5 s; `parse` writes the files it reads into the folder.
    func fuzz(_ name: String, seed: UInt64, binary: Bool = false, parse: @escaping (URL, Data) throws -> Void) throws {
        let original = [UInt8](try Data(contentsOf: Self.corpus.appendingPathComponent(name)))
        var rng = SplitMix64(seed: seed)
        var thrown = 0
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for i in 0..<Self.inputsPerFile {
            var input = original
            let steps = rng.below(4) == 0 ? 2 + rng.below(2) : 1  // mostly one mutation: the input stays near-valid
            var applied: [String] = []
            for _ in 0..<steps { applied.append(Mutation.apply(&input, donor: original, binary: binary, rng: &rng)) }
            let done = DispatchSemaphore(value: 0)
            let threw = Box(false)
            let data = Data(input)
            DispatchQueue.global().async {
                do { try parse(dir, data) } catch { threw.value = true }
                done.signal()
            }
            guard done.wait(timeout: .now() + 5) == .success else {
                let kept = FileManager.default.temporaryDirectory.appendingPathComponent("grove-fuzz-hang-\(seed)-\(i)-" + name)
                try? data.write(to: kept)
                return XCTFail("\(name) mutation \(i) (seed \(seed): \(applied.joined(separator: ", "))) did not finish in 5 s; input kept in \(kept.path)")
            }
            if threw.value { thrown += 1 }
        }
        print("fuzz \(name): \(Self.inputsPerFile) mutations, \(thrown) rejected, \(Self.inputsPerFile - thrown) accepted, none crashed or hung")
    }
}

final class Box<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

/// A small seeded generator (SplitMix64), so that a failing mutation can be replayed.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }
}

/// Byte-level damage (bit flips, inserts, deletes, truncation, splices) and the numbers parsers
/// misjudge: negative, 2^63, beyond Int64, 1e308, NaN.
enum Mutation {
    static let extremes = ["-1", "0", "-0", "1e308", "-1e308", "NaN", "Infinity", "2.5", "4294967296", "9223372036854775807",
                           "9223372036854775808", "18446744073709551615", "-9223372036854775808", "1e10", "16777216", "\"\"", "null", "[]", "{}"]

    /// Applies one random mutation to `bytes` and says which; a `binary` file also gets extreme header sizes.
    static func apply(_ bytes: inout [UInt8], donor: [UInt8], binary: Bool, rng: inout SplitMix64) -> String {
        let at = rng.below(bytes.count + 1)
        switch rng.below(binary ? 7 : 6) {
        case 0:
            guard !bytes.isEmpty else { return "none" }
            let i = rng.below(bytes.count)
            bytes[i] ^= 1 << UInt8(rng.below(8))
            return "flip at \(i)"
        case 1:
            bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
            return "insert at \(at)"
        case 2:
            let n = min(1 + rng.below(16), bytes.count - min(at, bytes.count))
            bytes.removeSubrange(at..<(at + n))
            return "delete \(n) at \(at)"
        case 3:
            bytes.removeSubrange(at...)
            return "truncate at \(at)"
        case 4:
            let from = rng.below(donor.count), n = rng.below(min(64, donor.count - from) + 1)
            bytes.insert(contentsOf: donor[from..<(from + n)], at: at)
            return "splice \(n) from \(from) at \(at)"
        case 6:
            // The 8-byte little-endian size in front of a safetensors header.
            guard bytes.count >= 8 else { return "none" }
            let value: UInt64 = [0, 1, 7, UInt64.max, UInt64(Int64.max), 1 << 32, UInt64(bytes.count)][rng.below(7)]
            withUnsafeBytes(of: value.littleEndian) { for k in 0..<8 { bytes[k] = $0[k] } }
            return "size \(value)"
        default:
            // A number of the text (JSON, YAML, a safetensors header) replaced by an extreme.
            let numbers = numberRanges(bytes)
            guard !numbers.isEmpty else { return "none" }
            let r = numbers[rng.below(numbers.count)], e = extremes[rng.below(extremes.count)]
            bytes.replaceSubrange(r, with: Array(e.utf8))
            return "number at \(r.lowerBound) → \(e)"
        }
    }

    /// Runs of digits (with a leading minus) in `bytes`.
    static func numberRanges(_ bytes: [UInt8]) -> [Range<Int>] {
        var out: [Range<Int>] = [], i = 0
        while i < bytes.count {
            guard (48...57).contains(bytes[i]) else { i += 1; continue }
            let start = i > 0 && bytes[i - 1] == 45 ? i - 1 : i
            while i < bytes.count, (48...57).contains(bytes[i]) || bytes[i] == 46 || bytes[i] == 101 { i += 1 }
            out.append(start..<i)
        }
        return out
    }
}
