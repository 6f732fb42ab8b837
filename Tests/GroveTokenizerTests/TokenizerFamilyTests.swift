import Foundation
import GroveTestSupport
import XCTest
@testable import GroveTokenizer

/// Encoding and decoding against `tokenizers` 0.23 for each family's real components
/// (Tests/Fixtures/tokenizers, made by make_tokenizer_fixtures.py): GPT-2, Llama-3, Qwen2,
/// SmolLM2 and a tokenizer using the remaining normalizers, Split behaviours and ByteLevel options.
final class TokenizerFamilyTests: XCTestCase {
    static let dir = Fixtures.local.appendingPathComponent("tokenizers")

    /// The tokenizer in `folder` against `encodings.json` in `fixtures` (the family `name`'s entry).
    func family(_ name: String, folder: URL? = nil, fixtures: URL = dir) throws {
        let tok = try Tokenizer(directory: folder ?? Self.dir.appendingPathComponent(name))
        let fixture = try Fixtures.json(fixtures.appendingPathComponent("encodings.json"))
        let texts = fixture["texts"] as! [String]
        let expected = (fixture["families"] as! [String: Any])[name] as! [String: Any]
        let ids = expected["ids"] as! [[Int]], decoded = expected["decoded"] as! [String]
        var matched = 0
        for (i, text) in texts.enumerated() {
            let got = tok.encode(text)
            if got == ids[i] { matched += 1 } else { XCTFail("\(name): ids of \(text.debugDescription): \(got) != \(ids[i])") }
            XCTAssertEqual(tok.decode(ids[i]).unicodeScalars.elementsEqual(decoded[i].unicodeScalars), true, "\(name): decode of \(text.debugDescription)")
        }
        for (i, withSpecial) in (expected["ids_with_special"] as! [[Int]]).enumerated() {
            XCTAssertEqual(tok.encode(texts[i], addSpecialTokens: true), withSpecial, "\(name): ids with special tokens of \(texts[i].debugDescription)")
        }
        print("\(name): \(matched)/\(texts.count) strings encode as tokenizers does")
    }

    func testGPT2() throws { try family("gpt2") }
    func testLlama3() throws { try family("llama3") }
    func testQwen2() throws { try family("qwen2") }
    func testSmolLM2() throws { try family("smollm2") }
    func testMixedComponents() throws { try family("mixed") }

    /// Real tokenizers, too large to commit, checked where they are (see make_tokenizer_fixtures.py).
    func testLocalTokenizers() throws {
        guard let dirs = ProcessInfo.processInfo.environment["GROVE_TOKENIZER_CHECK"] else { throw XCTSkip("GROVE_TOKENIZER_CHECK is not set") }
        for path in dirs.split(separator: ":") {
            let dir = URL(fileURLWithPath: String(path))
            try family("local", folder: dir, fixtures: dir)
        }
    }

    /// "\r\n" is two scalars in one grapheme cluster; the pre-tokenizers see two.
    func testCarriageReturnNewlineSplitsLikeTokenizers() {
        XCTAssertEqual(PreTokenizer.byteLevel(addPrefixSpace: false, useRegex: true).split("a\r\nb"), ["a", "\r", "\n", "b"])
        XCTAssertEqual(PreTokenizer.split(.forRegex(PreTokenizer.qwen2Pattern), .isolated, invert: false).split("x\r\n\r\ny"),
                       ["x", "\r\n\r\n", "y"])
    }

    /// "é" and "e\u{301}" are equal as Swift Strings but are different bytes, so different ids.
    func testCanonicallyEquivalentTextsKeepTheirOwnIds() throws {
        let tok = try Tokenizer(directory: Self.dir.appendingPathComponent("gpt2"))
        let composed = tok.encode("café"), decomposed = tok.encode("cafe\u{301}")
        XCTAssertNotEqual(composed, decomposed)
        XCTAssertEqual(tok.encode("café"), composed)
        XCTAssertTrue(tok.decode(decomposed).unicodeScalars.elementsEqual("cafe\u{301}".unicodeScalars))
    }

    func testSpecialTokenFollowedByACombiningMark() throws {
        let tok = try Tokenizer(directory: Self.dir.appendingPathComponent("qwen2"))
        let end = tok.tokenToId("<|im_end|>")!
        XCTAssertEqual(tok.encode("<|im_end|>\u{301}").first, end)
    }

    func testSentencePieceComponentsAreRefusedByName() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("grove-tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let cases = [
            (#""pre_tokenizer": {"type": "Metaspace", "replacement": "▁"}"#, "'pre_tokenizer.type' = Metaspace"),
            (#""pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}]}"#, "'decoder.decoders[0].type' = ByteFallback"),
            (#""pre_tokenizer": {"type": "ByteLevel"}, "normalizer": {"type": "BertNormalizer"}"#, "'normalizer.type' = BertNormalizer"),
            (#""pre_tokenizer": {"type": "Digits"}"#, "'pre_tokenizer'"),
        ]
        for (json, expected) in cases {
            try #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, \#(json)}"#.write(to: dir.appendingPathComponent("tokenizer.json"), atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try Tokenizer(directory: dir)) { XCTAssertTrue("\($0)".contains(expected), "\($0)") }
        }
        try #"{"model": {"type": "BPE", "byte_fallback": true, "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}}"#
            .write(to: dir.appendingPathComponent("tokenizer.json"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Tokenizer(directory: dir)) { XCTAssertTrue("\($0)".contains("'model.byte_fallback' = true"), "\($0)") }
    }
}

/// Added tokens go through the ByteLevel decoder as `tokenizers` sends them (checked with 0.23):
/// "<é>" has a byte-table "é" (0xE9, invalid UTF-8 alone) and "ĠHi" a byte-table space.
final class TokenizerDecodeTests: XCTestCase {
    func testAddedTokensDecodeThroughTheByteTable() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("grove-tok-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: TokenizerFamilyTests.dir.appendingPathComponent("gpt2"), to: dir)
        let file = dir.appendingPathComponent("tokenizer.json")
        var json = try Fixtures.json(file)
        json["added_tokens"] = (json["added_tokens"] as! [[String: Any]]) + [
            ["id": 700, "content": "<é>", "special": true, "lstrip": false, "rstrip": false, "normalized": false, "single_word": false],
            ["id": 701, "content": "ĠHi", "special": false, "lstrip": false, "rstrip": false, "normalized": false, "single_word": false],
        ]
        try JSONSerialization.data(withJSONObject: json).write(to: file)
        let tok = try Tokenizer(directory: dir)
        XCTAssertEqual(tok.encode("a<é>b"), [65, 700, 66])
        XCTAssertEqual(tok.decode([65, 700, 66, 701]), "a<\u{FFFD}>b Hi")
        XCTAssertEqual(tok.decode([65, 700, 66, 701], skipSpecialTokens: true), "ab Hi")
    }
}
