import Foundation
import GroveConfig
import GroveData
import GroveModel
import GroveTasks

/// A run, as a recipe file describes it: seed, output folder, model, data, stages, evaluation.
/// Relative paths are read from the current directory. Each stage kind reads its own settings
/// (`StageRegistry`), each reward its own (`RewardRegistry`).
///
/// ```yaml
/// seed: 0
/// output_dir: runs/quickstart
/// model:
///   init: {model_type: qwen2, hidden_size: 128, num_hidden_layers: 4, num_attention_heads: 4, intermediate_size: 384}
///   tokenizer: {train: {vocab_size: 384}}            # or  tokenizer: path/to/dir
///   # or  path: models/qwen2-0.5b  with  lora: {r: 16, alpha: 32, dropout: 0.05, target_modules: all-linear}
/// data: {train: Datasets/arithmetic/train.jsonl, eval: Datasets/arithmetic/eval.jsonl, task: arithmetic}
/// stages:
///   - sft: {steps: 600, batch_size: 32, lr: 3e-3}
/// eval: {samples: 200, max_new_tokens: 64}
/// ```
public struct Recipe {
    public var file: String
    public var text: String
    public var name: String
    public var seed: UInt64
    public var outputDir: URL
    public var model: ModelSource
    /// Train a LoRA adapter on the frozen model instead of every weight (`model.lora`).
    public var lora: LoRAConfig?
    public var data: DataSpec
    public var stages: [any RecipeStage]
    public var eval: EvalSpec
    /// Checkpoints kept in `output_dir/checkpoints` (the newest; older ones are removed).
    public var keepCheckpoints: Int

    /// Where the model comes from.
    public enum ModelSource {
        /// A Hugging Face folder (config.json, safetensors, tokenizer files) or a `.gguf` file.
        case pretrained(URL)
        /// A fresh model from config.json-style keys, with a tokenizer loaded or trained.
        case scratch(config: ModelConfig, tokenizer: TokenizerSource)
    }

    public enum TokenizerSource {
        case load(URL)
        /// A byte-level BPE trained on the training texts.
        case train(vocabSize: Int)
    }

    /// The training and evaluation data.
    public struct DataSpec {
        public var train: URL
        /// A held-out file, or nil to split `evalSize` rows off the training file.
        public var eval: URL?
        public var evalSize: Int
        public var format: DatasetFormat
        public var task: TaskKind?
    }

    /// Held-out evaluation shared by every stage.
    public struct EvalSpec {
        /// Held-out examples used (generation cost grows with it).
        public var samples: Int
        public var maxNewTokens: Int
        /// Samples per problem for `eval/pass@k` (0: off).
        public var passK: Int
    }
}

extension Recipe {
    public static let topKeys = ["name", "seed", "output_dir", "model", "data", "stages", "eval", "keep_checkpoints"]

    /// Reads and checks a recipe from its parsed tree; `text` is kept for run.sqlite.
    public init(_ root: RecipeValue, file: String, text: String) throws {
        let r = RecipeReader(file: file)
        let top = try r.mapping(root, "", allowed: Recipe.topKeys)
        self.file = file
        self.text = text
        name = try top.string("name") ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        seed = UInt64(try top.int("seed", default: 0, min: 0))
        outputDir = URL(fileURLWithPath: try top.string("output_dir") ?? "runs/\(name)")
        keepCheckpoints = try top.int("keep_checkpoints", default: 3, min: 1)
        (model, lora) = try Recipe.readModel(try top.required("model"), r)
        data = try Recipe.readData(try top.required("data"), r)
        let evalFields = try top["eval"].map { try r.mapping($0, "eval", allowed: ["samples", "max_new_tokens", "pass_k"]) }
        eval = EvalSpec(samples: try evalFields?.int("samples", default: 200, min: 0) ?? 200,
                        maxNewTokens: try evalFields?.int("max_new_tokens", default: 64, min: 1) ?? 64,
                        passK: try evalFields?.int("pass_k", default: 0, min: 0) ?? 0)
        let stageList = try r.sequence(try top.required("stages"), "stages")
        if stageList.isEmpty { throw r.error(try top.required("stages"), "stages", "needs at least one stage") }
        stages = try stageList.enumerated().map { try StageRegistry.read($1, path: "stages.\($0)", r) }
        for (i, stage) in stages.enumerated() { try stage.check(index: i, in: stages, value: stageList[i], r) }
        if lora != nil {
            for (i, stage) in stages.enumerated() {
                guard let grpo = stage as? GRPOStage else { continue }
                if grpo.config.refreshReferenceEvery > 0 {
                    throw r.error(stageList[i], "stages.\(i).grpo.ref_refresh_every", "with model.lora the reference is the base model (the adapter switched off): it cannot be refreshed")
                }
                if grpo.sftControl { throw r.error(stageList[i], "stages.\(i).grpo.sft_control", "is not supported with model.lora") }
            }
        }
    }

    static func readModel(_ value: RecipeValue, _ r: RecipeReader) throws -> (ModelSource, LoRAConfig?) {
        let m = try r.mapping(value, "model", allowed: ["path", "init", "tokenizer", "lora"])
        if let path = m["path"] {
            if m.has("init") { throw r.error(path, "model", "give either 'path' (a model folder or .gguf file) or 'init' (a new model), not both") }
            let isGGUF = try r.string(path, "model.path").lowercased().hasSuffix(".gguf")
            return (.pretrained(try r.existingPath(path, "model.path", directory: !isGGUF)), try m["lora"].map { try readLoRA($0, r) })
        }
        if let lora = m["lora"] { throw r.error(lora, "model.lora", "needs 'path': an adapter trains on a pretrained model, not a new one") }
        guard let initValue = m["init"] else {
            throw RecipeError(file: r.file, line: m.line, path: "model", message: "needs 'path' (a Hugging Face folder or .gguf file) or 'init' (a config for a new model)")
        }
        let tokenizerValue = try m.required("tokenizer")
        let tokenizer: TokenizerSource
        if case .scalar = tokenizerValue {
            tokenizer = .load(try r.existingPath(tokenizerValue, "model.tokenizer", directory: true))
        } else {
            let t = try r.mapping(tokenizerValue, "model.tokenizer", allowed: ["train"])
            let train = try r.mapping(try t.required("train"), "model.tokenizer.train", allowed: ["vocab_size"])
            tokenizer = .train(vocabSize: try train.int("vocab_size", default: 512, min: 260))
        }
        // The config keys are config.json's; vocab size and special ids come from the tokenizer.
        guard case .mapping(let entries, _) = initValue else { throw r.error(initValue, "model.init", "expected a mapping of config.json keys") }
        var json: [String: Any] = ["vocab_size": 1]
        for (key, v) in entries {
            let s = try r.string(v, "model.init.\(key)")
            json[key] = Recipe.yamlScalar(s)
        }
        do {
            return (.scratch(config: try ModelConfig(json: json, file: r.file), tokenizer: tokenizer), nil)
        } catch let error as ModelError {
            throw RecipeError(file: r.file, line: initValue.line, path: "model.init", message: "\(error)".replacingOccurrences(of: "\(r.file): ", with: ""))
        }
    }

    /// `lora: {r: 16, alpha: 32, dropout: 0.05, target_modules: [q_proj, v_proj], use_rslora: false}`
    /// (target_modules: PEFT's module names, or all-linear, the default).
    static func readLoRA(_ value: RecipeValue, _ r: RecipeReader) throws -> LoRAConfig {
        let l = try r.mapping(value, "model.lora", allowed: ["r", "alpha", "dropout", "target_modules", "use_rslora"])
        let rank = try r.int(try l.required("r"), l.path("r"), min: 1)
        let targets: [String]
        switch l["target_modules"] {
        case nil: targets = ["all-linear"]
        case .some(let v):
            if case .scalar = v { targets = [try r.string(v, l.path("target_modules"))] }
            else { targets = try r.sequence(v, l.path("target_modules")).enumerated().map { try r.string($1, l.path("target_modules.\($0)")) } }
        }
        do {
            return try LoRAConfig(r: rank, alpha: try l.double("alpha", default: Double(2 * rank), range: 1e-6...1e6),
                                  dropout: try l.double("dropout", default: 0, range: 0...0.99), targetModules: targets,
                                  useRslora: try l.bool("use_rslora", default: false))
        } catch let error as LoRAConfig.Invalid {
            throw r.error(l[error.key == "target_modules" ? "target_modules" : "r"] ?? value, "model.lora", error.description)
        }
    }

    static func readData(_ value: RecipeValue, _ r: RecipeReader) throws -> DataSpec {
        let d = try r.mapping(value, "data", allowed: ["train", "eval", "eval_size", "format", "fields", "task"])
        let formatName = try d["format"].map { try r.string($0, "data.format") } ?? "prompt_completion"
        let format: DatasetFormat
        switch formatName {
        case "prompt_completion": format = .promptCompletion
        case "messages": format = .messages(field: "messages")
        case "fields":
            let f = try r.mapping(try d.required("fields"), "data.fields", allowed: ["prompt", "completion"])
            format = .fields(prompt: try f.string("prompt") ?? "prompt", completion: try f.string("completion") ?? "completion")
        default:
            throw r.error(d["format"]!, "data.format", "unknown format '\(formatName)'; one of: prompt_completion, messages, fields")
        }
        return DataSpec(train: try r.existingPath(try d.required("train"), "data.train", directory: false),
                        eval: try d["eval"].map { try r.existingPath($0, "data.eval", directory: false) },
                        evalSize: try d.int("eval_size", default: 200, min: 1),
                        format: format,
                        task: try d["task"].map { try r.choice($0, "data.task", as: TaskKind.self) })
    }

    /// A plain YAML value as config.json would hold it: integer, number, boolean or string.
    static func yamlScalar(_ s: String) -> Any {
        if let i = Int(s) { return i }
        if let d = Double(s) { return d }
        if s == "true" || s == "false" { return s == "true" }
        if s == "null" || s == "~" { return NSNull() }  // config.json's null (DeepSeek's q_lora_rank)
        return s
    }
}
