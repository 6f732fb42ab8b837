import Foundation
import GroveTestSupport
import XCTest
@testable import GroveData
@testable import GroveTokenizer

/// JSONL rows read through each dataset format, the errors bad rows give, and the seeded split.
final class DatasetTests: XCTestCase {
    /// A byte-level tokenizer with ChatML's markers and no chat template of its own (so ChatML).
    static func byteTokenizer() throws -> Tokenizer {
        try Tokenizer.train(corpus: [], vocabSize: 259, specialTokens: ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    }

    let tokenizer = try! byteTokenizer()

    /// A JSONL file holding `lines` as they are.
    func file(_ lines: [String], name: String = "rows.jsonl") throws -> JSONLFile {
        let url = Fixtures.temporaryDirectory().appendingPathComponent(name)
        try lines.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
        return try JSONLFile(url: url)
    }

    func example(_ line: String, _ format: DatasetFormat, completionRequired: Bool = true) throws -> Example {
        try file([line]).example(0, format: format, tokenizer: tokenizer, completionRequired: completionRequired)
    }

    /// The error `body` throws, as text.
    func message(_ body: () throws -> Any) -> String {
        do { _ = try body() } catch { return "\(error)" }
        XCTFail("no error thrown")
        return ""
    }

    // MARK: Reading lines

    func testBlankLinesAreSkippedAndLineNumbersKept() throws {
        let f = try file(["{\"prompt\": \"a\", \"completion\": \"b\"}", "", "  \t", "{\"prompt\": \"c\", \"completion\": \"d\"}", ""])
        XCTAssertEqual(f.count, 2)
        XCTAssertEqual(f.lineNumber(of: 0), 1)
        XCTAssertEqual(f.lineNumber(of: 1), 4)
        XCTAssertEqual(try f.row(1)["prompt"] as? String, "c")
        // Rows are read by offset, in any order, again and again.
        XCTAssertEqual(try f.row(0)["completion"] as? String, "b")
        XCTAssertEqual(try f.row(1)["completion"] as? String, "d")
    }

    func testUnreadableAndEmptyFilesNameTheFile() throws {
        let dir = Fixtures.temporaryDirectory()
        let missing = dir.appendingPathComponent("missing.jsonl")
        XCTAssertEqual(message { try JSONLFile(url: missing) }, "\(missing.path): cannot read: no such file")
        let blank = dir.appendingPathComponent("blank.jsonl")
        try "\n \n".write(to: blank, atomically: true, encoding: .utf8)
        XCTAssertEqual(message { try JSONLFile(url: blank) }, "\(blank.path): holds no rows")
    }

    func testBadRowsNameFileAndLine() throws {
        let f = try file(["{\"prompt\": \"ok\", \"completion\": \"ok\"}", "", "{\"prompt\": ", "[1, 2]",
                          "{\"question\": \"q\", \"answer\": 1}", "{\"prompt\": 5, \"completion\": \"x\"}"], name: "bad.jsonl")
        let path = f.url.path
        XCTAssertEqual(message { try f.row(1) }, "\(path):3: not a JSON object: invalid JSON")
        XCTAssertEqual(message { try f.row(2) }, "\(path):4: not a JSON object: a JSON value that is not an object")
        XCTAssertEqual(message { try f.example(3, format: .promptCompletion, tokenizer: self.tokenizer) },
                       "\(path):5: no field 'prompt' (the row has: answer, question); map fields in the recipe's data section")
        XCTAssertEqual(message { try f.example(3, format: .fields(prompt: "question", completion: "answer"), tokenizer: self.tokenizer) },
                       "\(path):5: field 'answer' should be a string")
        XCTAssertEqual(message { try f.example(4, format: .promptCompletion, tokenizer: self.tokenizer) },
                       "\(path):6: field 'prompt' should be a string or a list of {\"role\", \"content\"} messages")
    }

    // MARK: Text fields

    func testPromptCompletionRows() throws {
        let ex = try example(#"{"prompt": "12+7=", "completion": "19", "id": "a1"}"#, .promptCompletion)
        XCTAssertEqual(ex.prompt, "12+7=")
        XCTAssertEqual(ex.completion, "19")
        XCTAssertEqual(ex.id, "a1")
    }

    func testIdsFallBackToFileAndLine() throws {
        let f = try file(["", #"{"prompt": "a", "completion": "b", "id": 42}"#, #"{"prompt": "c", "completion": "d"}"#], name: "ids.jsonl")
        XCTAssertEqual(try f.example(0, format: .promptCompletion, tokenizer: tokenizer).id, "42")
        XCTAssertEqual(try f.example(1, format: .promptCompletion, tokenizer: tokenizer).id, "ids.jsonl:3")
    }

    func testFieldsFormatMapsNames() throws {
        let ex = try example(#"{"question": "How many?", "answer": "3 #### 3", "level": 2}"#, .fields(prompt: "question", completion: "answer"))
        XCTAssertEqual(ex.prompt, "How many?")
        XCTAssertEqual(ex.completion, "3 #### 3")
        XCTAssertEqual(ex.row["level"] as? Int, 2)
    }

    func testPromptOnlyTextRows() throws {
        let row = #"{"prompt": "12+7=", "answer": "19"}"#
        let ex = try example(row, .promptCompletion, completionRequired: false)
        XCTAssertEqual(ex.prompt, "12+7=")
        XCTAssertEqual(ex.completion, "")
        XCTAssertTrue(message { try self.example(row, .promptCompletion) }.contains("no field 'completion'"))
    }

    // MARK: Chats

    func testMessagesRowsSplitAtTheAssistantsReply() throws {
        let row = #"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}"#
        let ex = try example(row, .messages(field: "messages"))
        XCTAssertEqual(ex.prompt, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n")
        XCTAssertEqual(ex.completion, "4<|im_end|>\n")
        // As a GRPO prompt the reply is left out of the prompt (it stays the reference completion).
        let prompt = try example(row, .messages(field: "messages"), completionRequired: false)
        XCTAssertEqual(prompt.prompt, ex.prompt)
    }

    /// TRL's prompt-only conversation: a chat ending in a user turn is all prompt.
    func testMessagesEndingWithAUserTurnArePrompts() throws {
        let row = #"{"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}, {"role": "user", "content": "and 3+3?"}]}"#
        let ex = try example(row, .messages(field: "messages"), completionRequired: false)
        XCTAssertEqual(ex.prompt, "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\nand 3+3?<|im_end|>\n<|im_start|>assistant\n")
        XCTAssertEqual(ex.completion, "")
        let single = try example(#"{"messages": [{"role": "user", "content": "hi"}]}"#, .messages(field: "messages"), completionRequired: false)
        XCTAssertEqual(single.prompt, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    }

    func testSFTRejectsAChatWithoutAReply() throws {
        let f = try file(["", #"{"messages": [{"role": "user", "content": "2+2?"}]}"#], name: "sft.jsonl")
        XCTAssertEqual(message { try f.example(0, format: .messages(field: "messages"), tokenizer: self.tokenizer) },
                       "\(f.url.path):2: the chat in 'messages' ends with a user turn, not the assistant's reply to train on; prompt-only rows are for GRPO prompts")
    }

    func testMalformedChatsAreNamed() throws {
        let shape = "should be a list of {\"role\", \"content\"} messages"
        XCTAssertTrue(message { try self.example(#"{"messages": "hi"}"#, .messages(field: "messages")) }.hasSuffix(shape))
        XCTAssertTrue(message { try self.example(#"{"messages": []}"#, .messages(field: "messages")) }.hasSuffix(shape))
        XCTAssertTrue(message { try self.example(#"{"messages": [{"role": "user", "text": "hi"}]}"#, .messages(field: "messages"), completionRequired: false) }
            .hasSuffix(shape))
        XCTAssertTrue(message { try self.example(#"{"messages": [{"role": "assistant", "content": "4"}]}"#, .messages(field: "messages")) }
            .hasSuffix("should be a conversation before the assistant's reply"))
    }

    /// TRL's conversational prompt-only rows: `prompt` is a chat, rendered to open the assistant's turn.
    func testConversationalPromptOnlyRows() throws {
        let row = #"{"prompt": [{"role": "system", "content": "Think first."}, {"role": "user", "content": "12+7?"}], "answer": "19"}"#
        let ex = try example(row, .promptCompletion, completionRequired: false)
        XCTAssertEqual(ex.prompt, "<|im_start|>system\nThink first.<|im_end|>\n<|im_start|>user\n12+7?<|im_end|>\n<|im_start|>assistant\n")
        XCTAssertEqual(ex.completion, "")
        XCTAssertEqual(ex.row["answer"] as? String, "19")
        XCTAssertTrue(message { try self.example(row, .promptCompletion) }.contains("no field 'completion'"))
    }

    /// TRL's conversational prompt-completion rows read as the same chat in `messages` does.
    func testConversationalPromptCompletionRows() throws {
        let ex = try example(#"{"prompt": [{"role": "user", "content": "2+2?"}], "completion": [{"role": "assistant", "content": "4"}]}"#, .promptCompletion)
        let chat = try example(#"{"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}"#, .messages(field: "messages"))
        XCTAssertEqual(ex.prompt, "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n")
        XCTAssertEqual(ex.completion, "4<|im_end|>\n")
        XCTAssertEqual(ex.prompt, chat.prompt)
        XCTAssertEqual(ex.completion, chat.completion)
        XCTAssertTrue(message { try self.example(#"{"prompt": [{"role": "user", "content": "2+2?"}], "completion": "4"}"#, .promptCompletion) }
            .hasSuffix("field 'completion' should be a list of {\"role\", \"content\"} messages, as the prompt is"))
    }

    func testChatsUseTheTokenizersTemplate() throws {
        let llama = try Self.byteTokenizer()
        // Llama-3-Instruct's template, with its bos_token written out (this tokenizer has none).
        llama.chatTemplate = try ChatTemplate("{% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = '<|begin_of_text|>' + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")
        let f = try file([#"{"prompt": [{"role": "user", "content": " hi "}], "completion": [{"role": "assistant", "content": "yo"}]}"#])
        let ex = try f.example(0, format: .promptCompletion, tokenizer: llama)
        XCTAssertEqual(ex.prompt, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
        XCTAssertEqual(ex.completion, "yo<|eot_id|>")
    }

    // MARK: Splits

    func testTrainEvalSplitIsASeededPartition() {
        let a = DatasetSplit.trainEval(100, evalSize: 10, seed: 7)
        XCTAssertEqual(a.eval.count, 10)
        XCTAssertEqual(a.train.count, 90)
        XCTAssertEqual(Set(a.train + a.eval), Set(0..<100))
        XCTAssertEqual(a.train, a.train.sorted())
        let again = DatasetSplit.trainEval(100, evalSize: 10, seed: 7)
        XCTAssertEqual(again.train, a.train)
        XCTAssertEqual(again.eval, a.eval)
        XCTAssertNotEqual(DatasetSplit.trainEval(100, evalSize: 10, seed: 8).eval, a.eval)
        // Pinned: a change of generator or shuffle would move every saved run's held-out rows.
        XCTAssertEqual(DatasetSplit.trainEval(10, evalSize: 3, seed: 0).eval, [4, 8, 9])
    }

    func testSplitAlwaysLeavesATrainingRow() {
        let s = DatasetSplit.trainEval(5, evalSize: 200, seed: 1)
        XCTAssertEqual(s.eval.count, 4)
        XCTAssertEqual(s.train.count, 1)
    }

    func testShuffleIsASeededPermutation() {
        let order = DatasetSplit.shuffled(50, seed: 3, stream: 2)
        XCTAssertEqual(order.sorted(), Array(0..<50))
        XCTAssertNotEqual(order, Array(0..<50))
        XCTAssertEqual(DatasetSplit.shuffled(50, seed: 3, stream: 2), order)
        XCTAssertNotEqual(DatasetSplit.shuffled(50, seed: 3, stream: 3), order, "each epoch has its own stream")
        XCTAssertEqual(DatasetSplit.shuffled(1, seed: 3), [0])
        XCTAssertEqual(DatasetSplit.shuffled(0, seed: 3), [])
    }
}
