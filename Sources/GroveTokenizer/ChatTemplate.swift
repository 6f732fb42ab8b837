import Foundation

/// One message of a conversation.
public struct ChatMessage: Equatable {
    public var role: String
    public var content: String
    public init(role: String, content: String) { self.role = role; self.content = content }
}

/// A model's chat template: the Jinja source from its tokenizer files, run by Grove's Jinja
/// interpreter as transformers' `apply_chat_template` runs it.
public struct ChatTemplate {
    public let source: String
    /// Where the source came from, for errors ("dir/chat_template.jinja").
    public let origin: String
    let template: JinjaTemplate

    public init(_ source: String, origin: String = "chat template") throws {
        self.source = source
        self.origin = origin
        do { template = try JinjaTemplate(source) } catch {
            throw TokenizerError.malformed(file: origin, key: "chat_template", problem: "\(error)")
        }
    }

    /// Plain ChatML, `<|im_start|>role\ncontent<|im_end|>\n` per message: Grove's trained tokenizers'
    /// template, and the fallback for a tokenizer that has none.
    public static let chatML = try! ChatTemplate(
        "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}",
        origin: "Grove's ChatML template")

    /// The conversation as text. `specialTokens` are the template's `bos_token`, `eos_token`, ...
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool, specialTokens: [String: String] = [:]) throws -> String {
        var variables: [String: JinjaValue] = [
            "messages": .list(messages.map { .dict(JinjaDict([("role", .string($0.role)), ("content", .string($0.content))])) }),
            "add_generation_prompt": .bool(addGenerationPrompt),
            "tools": .none, "documents": .none,
        ]
        for (name, token) in specialTokens { variables[name] = .string(token) }
        do { return try template.render(variables) } catch {
            throw TokenizerError.malformed(file: origin, key: "chat_template", problem: "\(error)")
        }
    }
}

extension Tokenizer {
    /// Renders `messages` with the tokenizer's template. A tokenizer without one renders ChatML,
    /// and says so once on standard error.
    public func applyChatTemplate(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws -> String {
        guard let chatTemplate else {
            Tokenizer.warnOnce("\(sourceDescription): no chat template (chat_template.jinja or tokenizer_config.json 'chat_template'); rendering chats as plain ChatML")
            return try ChatTemplate.chatML.render(messages, addGenerationPrompt: addGenerationPrompt, specialTokens: templateTokens)
        }
        return try chatTemplate.render(messages, addGenerationPrompt: addGenerationPrompt, specialTokens: templateTokens)
    }

    nonisolated(unsafe) private static var warned: Set<String> = []
    private static let warnLock = NSLock()

    static func warnOnce(_ message: String) {
        warnLock.lock()
        defer { warnLock.unlock() }
        guard warned.insert(message).inserted else { return }
        FileHandle.standardError.write(Data(("warning: " + message + "\n").utf8))
    }
}
