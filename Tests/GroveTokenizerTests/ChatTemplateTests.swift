import Foundation
import GroveTestSupport
import XCTest
@testable import GroveTokenizer

/// Grove's Jinja interpreter against transformers' `apply_chat_template` (jinja2) on the
/// templates of Tests/Fixtures/tokenizers/chat_templates.json: ChatML, Qwen2.5, Qwen3, Llama-3, Llama-3.1,
/// SmolLM2 (its real template), Mistral, Gemma and one using the rest of the supported subset.
final class ChatTemplateTests: XCTestCase {
    static let dir = Fixtures.local.appendingPathComponent("tokenizers")

    func templates() throws -> [[String: Any]] {
        let data = try Data(contentsOf: Self.dir.appendingPathComponent("chat_templates.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [[String: Any]])
    }

    func testRenderingsMatchApplyChatTemplate() throws {
        var matched = 0, total = 0
        for t in try templates() {
            let name = t["name"] as! String
            let template = try JinjaTemplate(t["template"] as! String)
            for c in t["cases"] as! [[String: Any]] {
                total += 1
                let variables: [String: JinjaValue] = [
                    "messages": JinjaValue(json: c["messages"]!), "add_generation_prompt": .bool(c["add_generation_prompt"] as! Bool),
                    "tools": c["tools"].map(JinjaValue.init(json:)) ?? .none, "documents": .none,
                    "bos_token": .string(t["bos_token"] as! String), "eos_token": .string(t["eos_token"] as! String),
                ]
                let label = "\(name), \((c["messages"] as! [Any]).count) messages, add_generation_prompt \(c["add_generation_prompt"]!)"
                do {
                    let text = try template.render(variables)
                    if let expected = c["text"] as? String, text.unicodeScalars.elementsEqual(expected.unicodeScalars) { matched += 1; continue }
                    XCTFail("\(label): rendered \(text.debugDescription), expected \((c["text"] ?? c["error"]!))")
                } catch {
                    if let expected = c["error"] as? String, "\(error)" == expected { matched += 1; continue }
                    XCTFail("\(label): \(error), expected \((c["text"] ?? c["error"]!))")
                }
            }
        }
        print("chat templates: \(matched)/\(total) renderings match apply_chat_template")
        XCTAssertEqual(matched, total)
    }

    /// A folder as transformers 5 saves it: the template only in chat_template.jinja.
    func testChatTemplateJinjaIsRead() throws {
        let smol = try XCTUnwrap(try templates().first { $0["name"] as? String == "smollm2" })
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("grove-tok-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: Self.dir.appendingPathComponent("smollm2"), to: dir)
        try (smol["template"] as! String).write(to: dir.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
        let tok = try Tokenizer(directory: dir)
        let expected = (smol["cases"] as! [[String: Any]])[1]  // one user message, add_generation_prompt true
        XCTAssertEqual(expected["add_generation_prompt"] as? Bool, true)
        let text = try tok.applyChatTemplate([ChatMessage(role: "user", content: "What is 2+2?")], addGenerationPrompt: true)
        XCTAssertEqual(text, expected["text"] as? String)
        XCTAssertTrue(text.hasPrefix("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"))
    }

    func testTemplateErrorsNameTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("grove-tok-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: Self.dir.appendingPathComponent("qwen2"), to: dir)
        try "{% for m in messages %}{{ raise_exception('roles must alternate') }}{% endfor %}".write(to: dir.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
        let tok = try Tokenizer(directory: dir)
        XCTAssertThrowsError(try tok.applyChatTemplate([ChatMessage(role: "user", content: "hi")], addGenerationPrompt: false)) { error in
            XCTAssertTrue("\(error)".contains("chat_template.jinja") && "\(error)".contains("roles must alternate"), "\(error)")
        }
        try "{% include 'other.jinja' %}".write(to: dir.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Tokenizer(directory: dir)) { error in
            XCTAssertTrue("\(error)".contains("chat_template.jinja") && "\(error)".contains("{% include %} is not supported"), "\(error)")
        }
    }

    /// Older saves keep the special tokens only in special_tokens_map.json.
    func testSpecialTokensMapFillsInTheConfig() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("grove-tok-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: Self.dir.appendingPathComponent("qwen2"), to: dir)
        try #"{"bos_token": {"content": "<|endoftext|>"}, "eos_token": "<|im_start|>"}"#.write(to: dir.appendingPathComponent("special_tokens_map.json"), atomically: true, encoding: .utf8)
        try "{{ bos_token }}|{{ eos_token }}".write(to: dir.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
        let tok = try Tokenizer(directory: dir)
        XCTAssertEqual(tok.bosTokenId, tok.tokenToId("<|endoftext|>"))
        XCTAssertEqual(tok.eosTokenId, tok.tokenToId("<|im_end|>"), "tokenizer_config.json wins")
        XCTAssertEqual(try tok.applyChatTemplate([], addGenerationPrompt: false), "<|endoftext|>|<|im_end|>")
    }

    /// Only a tokenizer without any template falls back to ChatML.
    func testNoTemplateFallsBackToChatML() throws {
        let tok = try Tokenizer(directory: Self.dir.appendingPathComponent("qwen2"))
        XCTAssertNil(tok.chatTemplate)
        XCTAssertEqual(try tok.applyChatTemplate([ChatMessage(role: "user", content: "hi")], addGenerationPrompt: true),
                       "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    }
}
