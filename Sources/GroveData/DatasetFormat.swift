import Foundation
import GroveTokenizer

/// How a dataset's rows become a prompt and a completion.
public enum DatasetFormat: Equatable {
    /// Two text fields: `{"prompt": …, "completion": …}`, or any names (GSM8K: `question`, `answer`).
    case fields(prompt: String, completion: String)
    /// A chat: a list of `{"role", "content"}` messages; the last is the completion,
    /// the ones before it are rendered with the tokenizer's chat template.
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

extension JSONLFile {
    /// Row `i` read through `format`. Chat rows are rendered with `tokenizer`'s template.
    /// `completionRequired: false` reads prompt-only rows (what a GRPO prompt file needs, as
    /// TRL's prompt-only datasets): a missing completion field is then an empty completion.
    public func example(_ i: Int, format: DatasetFormat, tokenizer: Tokenizer, completionRequired: Bool = true) throws -> Example {
        let row = try self.row(i)
        let line = lineNumber(of: i)
        func text(_ field: String) throws -> String {
            guard let value = row[field] else {
                throw DataError.missingField(file: url.path, line: line, field: field, available: Array(row.keys))
            }
            guard let s = value as? String else {
                throw DataError.wrongFieldType(file: url.path, line: line, field: field, expected: "a string")
            }
            return s
        }
        let id = (row["id"] as? String) ?? (row["id"].map { "\($0)" } ?? "\(url.lastPathComponent):\(line)")
        switch format {
        case .fields(let p, let c):
            return Example(id: id, prompt: try text(p), completion: completionRequired || row[c] != nil ? try text(c) : "", row: row)
        case .messages(let field):
            guard let raw = row[field] else {
                throw DataError.missingField(file: url.path, line: line, field: field, available: Array(row.keys))
            }
            let list = raw as? [[String: Any]] ?? []
            let messages = list.compactMap { m -> ChatMessage? in
                guard let role = m["role"] as? String, let content = m["content"] as? String else { return nil }
                return ChatMessage(role: role, content: content)
            }
            guard messages.count >= 2, messages.count == list.count else {
                throw DataError.wrongFieldType(file: url.path, line: line, field: field,
                                               expected: "a list of at least two {\"role\", \"content\"} messages")
            }
            let prompt = tokenizer.applyChatTemplate(Array(messages.dropLast()), addGenerationPrompt: true)
            let full = tokenizer.applyChatTemplate(messages, addGenerationPrompt: false)
            // The completion is what the full rendering adds after the prompt (content + end-of-turn).
            let completion = full.hasPrefix(prompt) ? String(full.dropFirst(prompt.count)) : messages.last!.content
            return Example(id: id, prompt: prompt, completion: completion, row: row)
        }
    }
}
