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
}
