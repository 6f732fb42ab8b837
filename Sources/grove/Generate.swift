import ArgumentParser
import Foundation
import GroveModel
import GroveTokenizer

/// `grove generate --model DIR --prompt TEXT`: sample a continuation.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Sample a continuation of a prompt.")

    @Option(help: "A Hugging Face model folder (with its tokenizer files, or give --tokenizer).")
    var model: String

    @Option(help: "Tokenizer folder (defaults to the model folder).")
    var tokenizer: String?

    @Option(help: "The prompt text.")
    var prompt: String

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
        let tok = try Tokenizer(directory: URL(fileURLWithPath: tokenizer ?? model))
        let text = chat ? tok.applyChatTemplate([ChatMessage(role: "user", content: prompt)], addGenerationPrompt: true) : prompt
        let ids = tok.encode(text).map(Int32.init)
        guard !ids.isEmpty else { throw ValidationError("the prompt encodes to no tokens") }
        let stops = Set([tok.eosTokenId].compactMap { $0 }.map(Int32.init))
        let out = transformer.generate(prompts: [ids], maxNewTokens: maxTokens, temperature: temperature, seed: seed, stopTokens: stops)[0]
        print(tok.decode(out.map(Int.init), skipSpecialTokens: true))
    }
}
