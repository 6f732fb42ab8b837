import ArgumentParser
import Foundation
import GroveModel
import GroveTensor

/// `grove logits --model DIR --ids 1,2,3 --out FILE.npy`: float32 logits [T, vocab].
struct Logits: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a sequence's logits [T, vocab] as a float32 .npy file.")

    @Option(help: "A Hugging Face model folder or .gguf file.")
    var model: String

    @Option(help: "Token ids, comma-separated or a JSON array.")
    var ids: String

    @Option(help: "Output .npy file.")
    var out: String

    func run() throws {
        let transformer = try Transformer.load(from: URL(fileURLWithPath: model))
        let tokens = try parseIds(ids, vocabSize: transformer.config.vocabSize)
        guard !tokens.isEmpty else { throw ValidationError("--ids is empty") }
        let logits = GradMode.withoutGrad { transformer.forward(tokens: tokens, batch: 1) }
        try NumpyFile.write(logits, to: URL(fileURLWithPath: out))
        print("wrote \(out): float32 [\(tokens.count), \(transformer.config.vocabSize)]")
    }
}
