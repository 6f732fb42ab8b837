/// One message of a conversation.
public struct ChatMessage: Equatable {
    public var role: String
    public var content: String
    public init(role: String, content: String) { self.role = role; self.content = content }
}

/// The chat formats Grove renders natively (no Jinja interpreter: the families are few and fixed).
public enum ChatTemplate: Equatable {
    /// `<|im_start|>role\ncontent<|im_end|>\n` per message (Qwen). Qwen's own templates insert
    /// a default system message when the conversation has none.
    case chatML(defaultSystem: String?)
    /// `<|begin_of_text|>` then `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>` (Llama 3).
    case llama3

    /// By name: "chatml", "qwen", "llama3".
    public init?(name: String) {
        switch name.lowercased() {
        case "chatml": self = .chatML(defaultSystem: nil)
        case "qwen", "qwen2": self = .chatML(defaultSystem: "You are a helpful assistant.")
        case "llama3", "llama-3": self = .llama3
        default: return nil
        }
    }

    /// The family of a Jinja `chat_template` string, recognised by its markers.
    public static func recognize(_ jinja: String) -> ChatTemplate? {
        if jinja.contains("<|start_header_id|>") { return .llama3 }
        guard jinja.contains("<|im_start|>") else { return nil }
        // A literal default system prompt sits between "<|im_start|>system\n" and "<|im_end|>".
        if let start = jinja.range(of: "<|im_start|>system\\n"), let end = jinja.range(of: "<|im_end|>", range: start.upperBound..<jinja.endIndex) {
            let literal = jinja[start.upperBound..<end.lowerBound]
            if !literal.contains("'") && !literal.contains("{") { return .chatML(defaultSystem: String(literal)) }
        }
        return .chatML(defaultSystem: nil)
    }

    /// The conversation as text; `addGenerationPrompt` opens an assistant turn.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        var out = ""
        switch self {
        case .chatML(let defaultSystem):
            if let defaultSystem, messages.first?.role != "system" {
                out += "<|im_start|>system\n\(defaultSystem)<|im_end|>\n"
            }
            for m in messages { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
            if addGenerationPrompt { out += "<|im_start|>assistant\n" }
        case .llama3:
            out = "<|begin_of_text|>"
            for m in messages {
                out += "<|start_header_id|>\(m.role)<|end_header_id|>\n\n\(m.content.trimmingWhitespace())<|eot_id|>"
            }
            if addGenerationPrompt { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
        }
        return out
    }
}

extension String {
    /// Jinja's `| trim`.
    func trimmingWhitespace() -> String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}

extension Tokenizer {
    /// Renders `messages` with the tokenizer's template (ChatML when it has none).
    public func applyChatTemplate(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        (chatTemplate ?? .chatML(defaultSystem: nil)).render(messages, addGenerationPrompt: addGenerationPrompt)
    }
}
