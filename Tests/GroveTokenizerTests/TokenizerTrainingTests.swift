import Foundation
import XCTest
@testable import GroveTokenizer

/// BPE training, and cross-checks of our encoder against Python `tokenizers` on tokenizers
/// we write (trained; GPT-2 style; Llama-3 style). The cross-checks skip when
/// `python3 -c "import tokenizers"` fails (`make test` installs it).
final class TokenizerTrainingTests: XCTestCase {
    static let corpus: [String] = {
        var lines: [String] = []
        var x: UInt64 = 42
        func next(_ n: Int) -> Int { x = x &* 6364136223846793005 &+ 1442695040888963407; return Int((x >> 33) % UInt64(n)) }
        let words = ["the", "model", "learns", "to", "add", "numbers", "carry", "answer", "is", "Grove", "café", "naïve", "中文", "😀"]
        for _ in 0..<400 {
            let a = next(1000), b = next(1000)
            lines.append("\(a)+\(b)=\(a + b)")
            lines.append((0..<6).map { _ in words[next(words.count)] }.joined(separator: next(3) == 0 ? "  " : " ") + ".")
        }
        return lines
    }()

    static let probes = ["12+345=357", "the model learns", "  carry\tthe 1\n\nanswer: 42", "café naïve 中文😀", "Grove's answer isn't 7",
                         "<|im_start|>user\n1+1<|im_end|>", "unseen words ZZZ", ""]

    func testTrainingIsDeterministicAndRoundTrips() throws {
        let a = try Tokenizer.train(corpus: Self.corpus, vocabSize: 300, specialTokens: ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        let b = try Tokenizer.train(corpus: Self.corpus, vocabSize: 300, specialTokens: ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        XCTAssertEqual(a.vocabSize, 300)
        XCTAssertEqual(a.eosTokenId, 299)
        XCTAssertEqual(a.padTokenId, 297)
        for p in Self.probes {
            XCTAssertEqual(a.encode(p), b.encode(p))
            XCTAssertEqual(a.decode(a.encode(p)), p)
        }
        // Merges compress the training text below one token per byte.
        let text = Self.corpus.joined(separator: "\n")
        XCTAssertLessThan(Double(a.encode(text).count), 0.8 * Double(text.utf8.count))
        XCTAssertEqual(a.encode("<|im_end|>"), [299])
    }

    func testSavedTrainedTokenizerReloadsAndMatchesPython() throws {
        let tok = try Tokenizer.train(corpus: Self.corpus, vocabSize: 300, specialTokens: ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        let dir = temporaryDirectory()
        try tok.save(to: dir)
        let reloaded = try Tokenizer(directory: dir)
        for p in Self.probes { XCTAssertEqual(reloaded.encode(p), tok.encode(p)) }
        XCTAssertEqual(reloaded.eosTokenId, tok.eosTokenId)
        try assertMatchesPython(dir, reloaded)
    }

    /// GPT-2 style: a ByteLevel pre-tokenizer with its built-in regex, no normalizer, legacy "a b" merges.
    func testGPT2StyleMatchesPython() throws {
        let dir = try rewrite { json in
            json["normalizer"] = NSNull()
            json["pre_tokenizer"] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true]
            var model = json["model"] as! [String: Any]
            model["merges"] = (model["merges"] as! [[String]]).map { "\($0[0]) \($0[1])" }
            json["model"] = model
        }
        try assertMatchesPython(dir, try Tokenizer(directory: dir))
    }

    /// Llama-3 style: digits in runs of up to three, ignore_merges.
    func testLlama3StyleMatchesPython() throws {
        let dir = try rewrite { json in
            json["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": PreTokenizer.llama3Pattern], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false],
            ]]
            var model = json["model"] as! [String: Any]
            model["ignore_merges"] = true
            json["model"] = model
        }
        let tok = try Tokenizer(directory: dir)
        XCTAssertEqual(tok.preTokenizer.split("1234567"), ["123", "456", "7"])
        try assertMatchesPython(dir, tok)
    }

    // MARK: helpers

    func temporaryDirectory() -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("grove-tok-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A trained tokenizer saved, with its tokenizer.json edited by `edit`.
    func rewrite(_ edit: (inout [String: Any]) -> Void) throws -> URL {
        let dir = temporaryDirectory()
        try Tokenizer.train(corpus: Self.corpus, vocabSize: 300, specialTokens: ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]).save(to: dir)
        let file = dir.appendingPathComponent("tokenizer.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as! [String: Any]
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: file)
        return dir
    }

    func assertMatchesPython(_ dir: URL, _ tok: Tokenizer, file: StaticString = #filePath, line: UInt = #line) throws {
        let script = """
        import json, sys
        from tokenizers import Tokenizer
        t = Tokenizer.from_file(sys.argv[1])
        texts = json.load(sys.stdin)
        print(json.dumps([t.encode(s, add_special_tokens=False).ids for s in texts]))
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, dir.appendingPathComponent("tokenizer.json").path]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input; process.standardOutput = output; process.standardError = errors
        try process.run()
        input.fileHandleForWriting.write(try JSONSerialization.data(withJSONObject: Self.probes))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if stderr.contains("No module named") { throw XCTSkip("Python tokenizers is not installed") }
        XCTAssertEqual(process.terminationStatus, 0, stderr, file: file, line: line)
        let expected = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [[Int]], file: file, line: line)
        for (p, ids) in zip(Self.probes, expected) { XCTAssertEqual(tok.encode(p), ids, p.debugDescription, file: file, line: line) }
    }
}
