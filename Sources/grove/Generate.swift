import ArgumentParser
import Foundation
import GroveModel
import GroveRun
import GroveTokenizer

/// `grove generate --model DIR --prompt TEXT`: sample a continuation.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Sample a continuation of a prompt.")

    @Option(help: "A Hugging Face model folder or .gguf file (with its tokenizer, or give --tokenizer).")
    var model: String

    @Option(help: "Tokenizer folder or .gguf file (defaults to the model).")
    var tokenizer: String?

    @Option(help: "The prompt text; repeat the option to sample several prompts in one batch.")
    var prompt: [String]

    @Flag(help: "Wrap the prompt as a user message with the tokenizer's chat template.")
    var chat = false

    @Option(help: "Maximum number of new tokens.")
    var maxTokens = 64

    @Option(help: "Sampling temperature (0 = greedy).")
    var temperature: Float = 0.8

    @Option(help: "Random seed.")
    var seed: UInt64 = 0

    func run() throws {
        let transformer = try Transformer.load(from: URL(fileURLWithPath: model))
        let tok = try Tokenizer.load(model: URL(fileURLWithPath: tokenizer ?? model))
        let prompts = try prompt.map { p -> [Int32] in
            let text = chat ? try tok.applyChatTemplate([ChatMessage(role: "user", content: p)], addGenerationPrompt: true) : p
            let ids = tok.encode(text).map(Int32.init)
            guard !ids.isEmpty else { throw ValidationError("the prompt '\(p)' encodes to no tokens") }
            try transformer.checkTokens(ids)
            return ids
        }
        let stops = Set([tok.eosTokenId].compactMap { $0 }.map(Int32.init))
        let outputs = transformer.generate(prompts: prompts, maxNewTokens: maxTokens, temperature: temperature, seed: seed, stopTokens: stops)
        for (i, out) in outputs.enumerated() {
            if outputs.count > 1 { print("== \(prompt[i])") }
            print(tok.decode(out.map(Int.init), skipSpecialTokens: true))
        }
    }
}
