import Foundation
import XCTest
@testable import GroveTokenizer

final class TokenizerErrorTests: XCTestCase {
    func write(_ text: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("grove-tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try text.write(to: dir.appendingPathComponent("tokenizer.json"), atomically: true, encoding: .utf8)
        return dir
    }

    func testMissingFileNamesThePath() {
        XCTAssertThrowsError(try Tokenizer(directory: URL(fileURLWithPath: "/nonexistent/tok"))) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/tok/tokenizer.json"), "\(error)")
        }
    }

    func testCorruptJSON() throws {
        let dir = try write("{ not json")
        XCTAssertThrowsError(try Tokenizer(directory: dir)) { XCTAssertTrue("\($0)".contains("not a JSON object")) }
    }

    func testUnsupportedModelType() throws {
        let dir = try write(#"{"model": {"type": "WordPiece", "vocab": {}}}"#)
        XCTAssertThrowsError(try Tokenizer(directory: dir)) { error in
            XCTAssertTrue("\(error)".contains("model.type") && "\(error)".contains("WordPiece"), "\(error)")
        }
    }

    func testMergeWithUnknownTokens() throws {
        let dir = try write(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a", "b"]]}}"#)
        XCTAssertThrowsError(try Tokenizer(directory: dir)) { XCTAssertTrue("\($0)".contains("model.merges"), "\($0)") }
    }

    func assertRejected(_ json: String, naming words: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = try write(json)
        XCTAssertThrowsError(try Tokenizer(directory: dir), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(dir.path) && words.allSatisfy(text.contains), text, file: file, line: line)
        }
    }

    /// An empty added token matches everywhere without consuming text: encode would never end.
    func testEmptyAddedTokenIsAnError() throws {
        try assertRejected(#"{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"added_tokens":[{"id":1,"content":"","special":true}]}"#,
                           naming: ["added_tokens[0]", "empty"])
    }

    func testIdsOutsideTheIdSpace() throws {
        try assertRejected(#"{"model":{"type":"BPE","vocab":{"a":-1},"merges":[]}}"#, naming: ["model.vocab", "'a'", "-1"])
        try assertRejected(#"{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"added_tokens":[{"id":-5,"content":"<s>"}]}"#,
                           naming: ["added_tokens[0]", "-5"])
    }

    /// A far id would size the id → token table: 1e10 ids are 160 GB.
    func testHugeIdsAreErrorsNotAllocations() throws {
        try assertRejected(#"{"model":{"type":"BPE","vocab":{"a":10000000000},"merges":[]}}"#, naming: ["model.vocab", "'a'", "10000000000"])
        try assertRejected(#"{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"added_tokens":[{"id":1099511627776,"content":"<s>"}]}"#,
                           naming: ["added_tokens[0]", "1099511627776"])
    }

    func testDuplicateIds() throws {
        try assertRejected(#"{"model":{"type":"BPE","vocab":{"a":0,"b":0},"merges":[]}}"#, naming: ["model.vocab", "'a'", "'b'", "id 0"])
        try assertRejected(#"{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"added_tokens":[{"id":1,"content":"<s>"},{"id":1,"content":"</s>"}]}"#,
                           naming: ["added_tokens[1]", "<s>"])
    }

    /// tokenizers requires `merges` in a BPE model; without merges a multi-character token can never be produced.
    func testMergesMissingOrEmpty() throws {
        try assertRejected(#"{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2}}}"#, naming: ["model.merges", "missing"])
        try assertRejected(#"{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":[]}}"#, naming: ["model.merges", "'ab'"])
        let bytesOnly = try write(#"{"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":false},"model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":[]}}"#)
        XCTAssertEqual(try Tokenizer(directory: bytesOnly).encode("ab"), [0, 1])
        let wordLevel = try write(#"{"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":false},"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":[],"ignore_merges":true}}"#)
        XCTAssertEqual(try Tokenizer(directory: wordLevel).encode("ab"), [2])
    }

    func testInvalidPreTokenizerRegex() throws {
        try assertRejected(#"{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"pre_tokenizer":{"type":"Split","pattern":{"Regex":"(a"},"behavior":"Isolated"}}"#,
                           naming: ["pre_tokenizer.pattern", "(a"])
    }
}
