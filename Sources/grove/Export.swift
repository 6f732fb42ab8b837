import ArgumentParser
import Foundation
import GroveModel

/// `grove export --gguf OUT.gguf --model DIR|FILE.gguf [--type f16|q8_0]`: the model as a GGUF file for llama.cpp.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a model folder as a GGUF file (llama.cpp's format).")

    @Option(help: "Output .gguf file.")
    var gguf: String

    @Option(help: "A Hugging Face model folder (config.json, safetensors, tokenizer files), e.g. a run's final/ folder, or a .gguf file.")
    var model: String

    @Option(help: "Storage type of the matrices: f16 or q8_0 (norms and biases stay f32).")
    var type = "f16"

    func run() throws {
        let ggmlType: GGMLType
        switch type.lowercased() {
        case "f16": ggmlType = .f16
        case "q8_0": ggmlType = .q8_0
        default: throw ValidationError("--type must be f16 or q8_0, not '\(type)'")
        }
        let dir = URL(fileURLWithPath: model)
        let transformer = try Transformer.load(from: dir)
        let name = dir.standardizedFileURL.deletingPathExtension().lastPathComponent
        try transformer.ggufWriter(type: ggmlType, tokenizer: dir, name: name).write(to: URL(fileURLWithPath: gguf))
        print("wrote \(gguf): \(transformer.config.modelType.rawValue), \(ggmlType), \(transformer.parameterCount.formatted()) parameters")
    }
}
