import ArgumentParser
import Foundation
import GroveModel
import GroveTokenizer

/// `grove merge ADAPTER_DIR --base BASE --out DIR`: fold a LoRA adapter into its base,
/// W ← W + s·B·A, and write the result as a plain Hugging Face model folder.
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Merge a LoRA adapter (a PEFT folder) into its base model.")

    @Argument(help: "The adapter folder (adapter_config.json, adapter_model.safetensors), e.g. a run's final/.")
    var adapter: String

    @Option(help: "The base model folder (defaults to the adapter's base_model_name_or_path).")
    var base: String?

    @Option(help: "Output folder for the merged model.")
    var out: String

    func run() throws {
        let adapterDir = URL(fileURLWithPath: adapter), outDir = URL(fileURLWithPath: out)
        let model = try Transformer.load(adapter: adapterDir, base: base.map { URL(fileURLWithPath: $0) })
        let baseDir = URL(fileURLWithPath: model.nameOrPath!)
        model.mergeAdapter()
        try model.save(to: outDir)
        // The tokenizer saved with the adapter (a run's final/ has it), else the base's.
        let tokenizerDir = [adapterDir, baseDir].first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("tokenizer.json").path) }
        if let tokenizerDir { try Tokenizer(directory: tokenizerDir).save(to: outDir) }
        print("wrote \(out): \(model.config.modelType.rawValue) with the adapter of \(adapter) merged into \(baseDir.path)")
    }
}
