import Foundation
import GroveTokenizer

/// How a dataset's rows become a prompt and a completion.
public enum DatasetFormat: Equatable {
    /// Two fields: `{"prompt": …, "completion": …}`, or any names (GSM8K: `question`, `answer`).
    /// Each is a text, or, as TRL's conversational rows, a list of `{"role", "content"}` messages:
    /// the prompt's chat is rendered with the tokenizer's template, the completion is the reply after it.
    case fields(prompt: String, completion: String)
    /// A chat: a list of `{"role", "content"}` messages. A final assistant turn is the completion and
    /// the ones before it the prompt; a chat ending in any other turn is all prompt (TRL's prompt-only rows).
    case messages(field: String)

    public static let promptCompletion = DatasetFormat.fields(prompt: "prompt", completion: "completion")
}

/// One training example: the text the model is given and the text it should produce,
/// plus the whole row, so checkers can reach reference answers and other fields.
public struct Example {
    public let id: String
    public let prompt: String
    public let completion: String
    public let row: [String: Any]
}

extension Tokenizer {
    /// `prompt` rendered with the chat template up to the opening of the assistant's turn, and what
    /// rendering `reply` after it adds (its content and end-of-turn); "" when there is no reply.
    func renderChat(prompt: [ChatMessage], reply: [ChatMessage]) throws -> (prompt: String, completion: String) {
        let promptText = try applyChatTemplate(prompt, addGenerationPrompt: true)
        if reply.isEmpty { return (promptText, "") }
        let full = try applyChatTemplate(prompt + reply, addGenerationPrompt: false)
        // By scalars: a Character-wise prefix would treat canonically equivalent text as equal.
        let (fullScalars, promptScalars) = (full.unicodeScalars, promptText.unicodeScalars)
        let completion = fullScalars.starts(with: promptScalars)
            ? String(String.UnicodeScalarView(fullScalars.dropFirst(promptScalars.count))) : reply.map(\.content).joined()
        return (promptText, completion)
    }
}

extension JSONLFile {
    /// Row `i` read through `format`. Chat rows are rendered with `tokenizer`'s template.
    /// `completionRequired: false` reads prompt-only rows (what a GRPO prompt file needs, as
    /// TRL's prompt-only datasets): a missing completion field, or a chat with no final
    /// assistant turn, is then an empty completion.
    public func example(_ i: Int, format: DatasetFormat, tokenizer: Tokenizer, completionRequired: Bool = true) throws -> Example {
        let row = try self.row(i)
        let line = lineNumber(of: i)
        let chatShape = "a list of {\"role\", \"content\"} messages"
        func value(_ field: String) throws -> Any {
            guard let value = row[field] else {
                throw DataError.missingField(file: url.path, line: line, field: field, available: Array(row.keys))
            }
            return value
        }
        func text(_ field: String) throws -> String {
            guard let s = try value(field) as? String else {
                throw DataError.wrongFieldType(file: url.path, line: line, field: field, expected: "a string")
            }
            return s
        }
        /// The field's messages; `expected` says what it should have held when it does not hold them.
        func chat(_ field: String, expected: String) throws -> [ChatMessage] {
            let list = try value(field) as? [[String: Any]] ?? []
            let messages = list.compactMap { m -> ChatMessage? in
                guard let role = m["role"] as? String, let content = m["content"] as? String else { return nil }
                return ChatMessage(role: role, content: content)
            }
            guard !messages.isEmpty, messages.count == list.count else {
                throw DataError.wrongFieldType(file: url.path, line: line, field: field, expected: expected)
            }
            return messages
        }
        let id = (row["id"] as? String) ?? (row["id"].map { "\($0)" } ?? "\(url.lastPathComponent):\(line)")
        let readsCompletion: (String) -> Bool = { completionRequired || row[$0] != nil }
        func render(_ prompt: [ChatMessage], _ reply: [ChatMessage]) throws -> (prompt: String, completion: String) {
            do { return try tokenizer.renderChat(prompt: prompt, reply: reply) } catch {
                throw DataError.chatTemplate(file: url.path, line: line, reason: "\(error)")
            }
        }
        switch format {
        case .fields(let p, let c):
            if try value(p) is String {
                return Example(id: id, prompt: try text(p), completion: readsCompletion(c) ? try text(c) : "", row: row)
            }
            let prompt = try chat(p, expected: "a string or " + chatShape)
            let reply = readsCompletion(c) ? try chat(c, expected: chatShape + ", as the prompt is") : []
            let rendered = try render(prompt, reply)
            return Example(id: id, prompt: rendered.prompt, completion: rendered.completion, row: row)
        case .messages(let field):
            let messages = try chat(field, expected: chatShape)
            let rendered: (prompt: String, completion: String)
            if messages.last!.role == "assistant" {
                guard messages.count >= 2 else {
                    throw DataError.wrongFieldType(file: url.path, line: line, field: field, expected: "a conversation before the assistant's reply")
                }
                rendered = try render(Array(messages.dropLast()), [messages.last!])
            } else {
                guard !completionRequired else {
                    throw DataError.noReply(file: url.path, line: line, field: field, lastRole: messages.last!.role)
                }
                rendered = try render(messages, [])
            }
            return Example(id: id, prompt: rendered.prompt, completion: rendered.completion, row: row)
        }
    }
}
