import ArgumentParser
import Foundation
import GroveModel

/// `grove info MODEL_DIR`: the model's configuration and parameter count.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a model folder's configuration and parameter count.")

    @Argument(help: "A Hugging Face model folder (config.json + safetensors).")
    var modelDir: String

    func run() throws {
        let config = try ModelConfig.load(from: URL(fileURLWithPath: modelDir))
        print("model:          \(modelDir)")
        print("architecture:   \(config.modelType.rawValue) (\(config.architectures.joined(separator: ", ")))")
        print("layers:         \(config.numHiddenLayers)")
        print("hidden:         \(config.hiddenSize), intermediate \(config.intermediateSize)")
        print("heads:          \(config.numAttentionHeads) query, \(config.numKeyValueHeads) key/value, head size \(config.headDim)")
        print("vocabulary:     \(config.vocabSize)\(config.tieWordEmbeddings ? " (tied embeddings)" : "")")
        print("rope theta:     \(config.ropeTheta)")
        print("parameters:     \(config.parameterCount().formatted())")
    }
}
