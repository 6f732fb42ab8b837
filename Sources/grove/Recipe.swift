import Foundation
import GroveTrain

/// A run, as a recipe file describes it: seed, output folder, model, data, stages, evaluation.
///
/// ```yaml
/// seed: 0
/// output_dir: runs/quickstart
/// model:
///   init: {hidden_size: 128, num_hidden_layers: 4, ...}   # or  path: some/hf_model_dir
///   tokenizer: {train: {vocab_size: 512}}                  # or  tokenizer: some/dir
/// data: {train: Datasets/arithmetic/train.jsonl, eval: Datasets/arithmetic/eval.jsonl, task: arithmetic}
/// stages:
///   - sft: {steps: 600, batch_size: 32, lr: 3e-3}
/// eval: {every: 200, samples: 200, max_new_tokens: 64}
/// ```
struct Recipe {
    var file: String
    var text: String
    var seed: UInt64
    var outputDir: URL
    var model: ModelSource
    var data: DataSpec
    var stages: [Stage]
    var eval: EvalSpec

    /// Where the model comes from.
    enum ModelSource {
        /// A Hugging Face folder (config.json, safetensors, tokenizer files).
        case pretrained(URL)
        /// A fresh model from config.json-style keys, with a tokenizer loaded or trained.
        case scratch(config: [String: Any], tokenizer: TokenizerSource)
    }

    enum TokenizerSource {
        case load(URL)
        /// Train a byte-level BPE on the training texts.
        case train(vocabSize: Int)
    }

    /// One stage of the run, in order.
    enum Stage {
        case sft(SFTConfig)

        var kind: String {
            switch self { case .sft: return "sft" }
        }
    }
}

/// The training and evaluation data of a run.
struct DataSpec {
    var train: URL
    /// A held-out file, or nil to split `evalSize` rows off the training file.
    var eval: URL?
    var evalSize: Int
    var format: DatasetFormat
    var task: TaskKind?
}

/// Held-out evaluation settings shared by every stage.
struct EvalSpec {
    var samples: Int
    var maxNewTokens: Int
}
