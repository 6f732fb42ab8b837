import Foundation
import GroveTestSupport
import XCTest
@testable import GroveTokenizer

/// Encode/decode against Hugging Face `tokenizers` 0.23 on the shared fixture strings.
final class TokenizerFixtureTests: XCTestCase {
    static let fixtures = Fixtures.publicDir

    var tokenizer: Tokenizer!
    var cases: [String: Any]!

    override func setUpWithError() throws {
        tokenizer = try Tokenizer(directory: Self.fixtures.appendingPathComponent("tokenizer"))
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("tokenizer_cases.json"))
        cases = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func testEveryCaseEncodesAndDecodesLikeTokenizers() {
        let list = cases["cases"] as! [[String: Any]]
        XCTAssertEqual(list.count, 28)
        for c in list {
            let text = c["text"] as! String
            let ids = tokenizer.encode(text)
            XCTAssertEqual(ids, c["ids"] as! [Int], "ids of \(text.debugDescription)")
            XCTAssertEqual(ids.map { tokenizer.idToToken($0) ?? "?" }, c["tokens"] as! [String], "tokens of \(text.debugDescription)")
            let reference = c["ids"] as! [Int]
            XCTAssertEqual(tokenizer.decode(reference), c["decoded"] as! String, "decode of \(text.debugDescription)")
            XCTAssertEqual(tokenizer.decode(reference, skipSpecialTokens: true), c["decoded_skip_special"] as! String)
            if c["decode_roundtrips"] as! Bool { XCTAssertEqual(tokenizer.decode(ids), text) }
        }
    }

    func testChatRenderings() throws {
        for c in cases["chat"] as! [[String: Any]] {
            let messages = (c["messages"] as! [[String: String]]).map { ChatMessage(role: $0["role"]!, content: $0["content"]!) }
            let text = try tokenizer.applyChatTemplate(messages, addGenerationPrompt: c["add_generation_prompt"] as! Bool)
            XCTAssertEqual(text, c["text"] as! String)
            XCTAssertEqual(tokenizer.encode(text), c["ids"] as! [Int])
        }
    }

    func testSpecialTokenIdsFromConfig() {
        XCTAssertEqual(tokenizer.eosTokenId, 1023)
        XCTAssertEqual(tokenizer.padTokenId, 1021)
        XCTAssertNil(tokenizer.bosTokenId)
        XCTAssertEqual(tokenizer.vocabSize, 1024)
        XCTAssertEqual(tokenizer.specialTokenIds, [1021, 1022, 1023])
        XCTAssertEqual(tokenizer.chatTemplate?.source, ChatTemplate.chatML.source)
    }

    func testInvalidUTF8DecodesToReplacementCharacter() {
        // A lone byte 0xE4 (the start of a 3-byte sequence) cannot be decoded.
        let id = tokenizer.tokenToId(String(ByteLevel.byteToChar[0xE4]))!
        XCTAssertEqual(tokenizer.decode([id]), "\u{FFFD}")
    }
}

/// Saving a loaded tokenizer writes back the files it was read from, unchanged.
final class TokenizerSaveTests: XCTestCase {
    func testLoadThenSaveIsByteIdentical() throws {
        let source = FileManager.default.temporaryDirectory.appendingPathComponent("grove-tok-src-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        let shared = Fixtures.publicDir.appendingPathComponent("tokenizer")
        for name in ["tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(at: shared.appendingPathComponent(name), to: source.appendingPathComponent(name))
        }
        // Files transformers 5 writes beside them, which Grove must carry along.
        try Data(#"{"eos_token": "<|im_end|>", "bos_token": "<|endoftext|>"}"#.utf8).write(to: source.appendingPathComponent("special_tokens_map.json"))
        try Data("{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}\n".utf8).write(to: source.appendingPathComponent("chat_template.jinja"))

        let saved = FileManager.default.temporaryDirectory.appendingPathComponent("grove-tok-saved-\(UUID().uuidString)")
        try Tokenizer(directory: source).save(to: saved)
        for name in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"] {
            XCTAssertEqual(try Data(contentsOf: saved.appendingPathComponent(name)), try Data(contentsOf: source.appendingPathComponent(name)), name)
        }
    }
}
