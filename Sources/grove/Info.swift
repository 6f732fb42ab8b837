import ArgumentParser
import Foundation
import GroveModel

/// `grove info MODEL`: the model's configuration and parameter count.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a model's configuration and parameter count.")

    @Argument(help: "A Hugging Face model folder (config.json + safetensors) or a .gguf file.")
    var modelDir: String

    func run() throws {
        let url = URL(fileURLWithPath: modelDir)
        let config: ModelConfig
        var gguf: GGUFFile?
        if GGUFFile.isGGUF(url) {
            gguf = try GGUFFile(url)
            config = try ModelConfig(gguf: gguf!)
        } else {
            config = try ModelConfig.load(from: url)
        }
        print("model:          \(modelDir)")
        print("architecture:   \(config.modelType.rawValue) (\(config.architectures.joined(separator: ", ")))")
        print("layers:         \(config.numHiddenLayers)")
        print("hidden:         \(config.hiddenSize), intermediate \(config.intermediateSize)")
        print("heads:          \(config.numAttentionHeads) query, \(config.numKeyValueHeads) key/value, head size \(config.headDim)")
        print("vocabulary:     \(config.vocabSize)\(config.tieWordEmbeddings ? " (tied embeddings)" : "")")
        print("rope theta:     \(config.ropeTheta)")
        print("parameters:     \(config.parameterCount().formatted())")
        if let gguf {
            var counts: [String: Int] = [:]
            for t in gguf.tensors { counts["\(t.type)", default: 0] += 1 }
            print("gguf:           version \(gguf.version), tensors \(counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))")
            if let pre = gguf["tokenizer.ggml.pre"]?.string { print("tokenizer:      \(gguf["tokenizer.ggml.model"]?.string ?? "?") (pre-tokenizer \(pre))") }
        }
    }
}
