import Foundation
import GroveData
import GroveModel
import GroveRollout
import Rewards
import GroveTasks
import GroveTensor
import GroveTrain

/// A run, as a recipe file describes it: seed, output folder, model, data, stages, evaluation.
/// Relative paths are read from the current directory.
///
/// ```yaml
/// seed: 0
/// output_dir: runs/quickstart
/// model:
///   init: {model_type: qwen2, hidden_size: 128, num_hidden_layers: 4, num_attention_heads: 4, intermediate_size: 384}
///   tokenizer: {train: {vocab_size: 384}}            # or  tokenizer: path/to/dir
/// data: {train: Datasets/arithmetic/train.jsonl, eval: Datasets/arithmetic/eval.jsonl, task: arithmetic}
/// stages:
///   - sft: {steps: 600, batch_size: 32, lr: 3e-3}
/// eval: {samples: 200, max_new_tokens: 64}
/// ```
struct Recipe {
    var file: String
    var text: String
    var name: String
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
        case scratch(config: ModelConfig, tokenizer: TokenizerSource)
    }

    enum TokenizerSource {
        case load(URL)
        /// A byte-level BPE trained on the training texts.
        case train(vocabSize: Int)
    }

    /// One stage of the run, in order.
    enum Stage {
        case sft(SFTConfig)
        case grpo(GRPOStage)

        var kind: String {
            switch self {
            case .sft: return "sft"
            case .grpo: return "grpo"
            }
        }
    }

    /// A grpo stage: trainer settings, rewards, where its prompts come from, and the control.
    struct GRPOStage {
        var config: GRPOConfig
        var rewards: [RewardSpec]
        /// The stage's prompt file (same format as data.train), or nil for data.train.
        var prompts: URL?
        /// Also train the stage's starting model by further SFT (the nearest earlier sft stage's
        /// settings) for the wall time the GRPO steps took, and report both.
        var sftControl: Bool
    }

    /// A reward of a grpo stage, as the recipe names it (built by the runner).
    enum RewardSpec {
        case task(TaskKind?, weight: Double)
        case exactAnswer(ExactAnswerReward.Extraction, field: String, tolerance: Double, weight: Double)
        case regex(name: String, pattern: String, weight: Double)
        case length(LengthReward.Shape, weight: Double)
        case repetition(n: Int, maxPenalty: Double, weight: Double)
        case external(name: String, command: String, timeout: Double, fallback: Double?, weight: Double)
        case rewardModel(name: String, path: URL, weight: Double)
    }

    /// The training and evaluation data.
    struct DataSpec {
        var train: URL
        /// A held-out file, or nil to split `evalSize` rows off the training file.
        var eval: URL?
        var evalSize: Int
        var format: DatasetFormat
        var task: TaskKind?
    }

    /// Held-out evaluation shared by every stage.
    struct EvalSpec {
        /// Held-out examples used (generation cost grows with it).
        var samples: Int
        var maxNewTokens: Int
        /// Samples per problem for `eval/pass@k` (0: off).
        var passK: Int
    }
}

extension Recipe {
    static let topKeys = ["name", "seed", "output_dir", "model", "data", "stages", "eval"]

    /// Reads and validates a recipe file, applying `overrides` ("stages.0.lr=3e-4") first.
    static func load(path: String, overrides: [String] = []) throws -> Recipe {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw RecipeError(file: path, line: 0, path: "", message: FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file")
        }
        var root = try RecipeValue.parse(text, file: path)
        for o in overrides {
            guard let eq = o.firstIndex(of: "=") else {
                throw RecipeError(file: path, line: 0, path: o, message: "an override is KEY.PATH=VALUE")
            }
            let key = String(o[..<eq]), value = String(o[o.index(after: eq)...])
            try root.set(path: key.split(separator: ".").map(String.init),
                         to: try RecipeValue.parse(value.isEmpty ? "''" : value, file: "--set \(key)").withLine(0),
                         file: path, fullPath: key)
        }
        return try Recipe(root, file: path, text: text)
    }

    init(_ root: RecipeValue, file: String, text: String) throws {
        let r = RecipeReader(file: file)
        let top = try r.mapping(root, "", allowed: Recipe.topKeys)
        self.file = file
        self.text = text
        name = try top.string("name") ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        seed = UInt64(try top.int("seed", default: 0, min: 0))
        outputDir = URL(fileURLWithPath: try top.string("output_dir") ?? "runs/\(name)")
        model = try Recipe.readModel(try top.required("model"), r)
        data = try Recipe.readData(try top.required("data"), r)
        let evalFields = try top["eval"].map { try r.mapping($0, "eval", allowed: ["samples", "max_new_tokens", "pass_k"]) }
        eval = EvalSpec(samples: try evalFields?.int("samples", default: 200, min: 0) ?? 200,
                        maxNewTokens: try evalFields?.int("max_new_tokens", default: 64, min: 1) ?? 64,
                        passK: try evalFields?.int("pass_k", default: 0, min: 0) ?? 0)
        let stageList = try r.sequence(try top.required("stages"), "stages")
        if stageList.isEmpty { throw r.error(try top.required("stages"), "stages", "needs at least one stage") }
        stages = try stageList.enumerated().map { try Recipe.readStage($1, path: "stages.\($0)", r) }
        for (i, stage) in stages.enumerated() {
            if case .grpo(let g) = stage, g.sftControl, Recipe.controlSource(before: i, in: stages) == nil {
                throw r.error(stageList[i], "stages.\(i).grpo.sft_control", "needs an sft stage before this grpo stage (its settings are what the control repeats)")
            }
        }
    }

    static func readModel(_ value: RecipeValue, _ r: RecipeReader) throws -> ModelSource {
        let m = try r.mapping(value, "model", allowed: ["path", "init", "tokenizer"])
        if let path = m["path"] {
            if m.has("init") { throw r.error(path, "model", "give either 'path' (a model folder) or 'init' (a new model), not both") }
            return .pretrained(try existing(path, "model.path", r, directory: true))
        }
        guard let initValue = m["init"] else {
            throw RecipeError(file: r.file, line: m.line, path: "model", message: "needs 'path' (a Hugging Face folder) or 'init' (a config for a new model)")
        }
        let tokenizerValue = try m.required("tokenizer")
        let tokenizer: TokenizerSource
        if case .scalar = tokenizerValue {
            tokenizer = .load(try existing(tokenizerValue, "model.tokenizer", r, directory: true))
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
            return .scratch(config: try ModelConfig(json: json, file: r.file), tokenizer: tokenizer)
        } catch let error as ModelError {
            throw RecipeError(file: r.file, line: initValue.line, path: "model.init", message: "\(error)".replacingOccurrences(of: "\(r.file): ", with: ""))
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
        return DataSpec(train: try existing(try d.required("train"), "data.train", r, directory: false),
                        eval: try d["eval"].map { try existing($0, "data.eval", r, directory: false) },
                        evalSize: try d.int("eval_size", default: 200, min: 1),
                        format: format,
                        task: try d["task"].map { try r.choice($0, "data.task", as: TaskKind.self) })
    }

    static func readStage(_ value: RecipeValue, path: String, _ r: RecipeReader) throws -> Stage {
        let kinds = ["sft", "grpo"]
        guard case .mapping(let entries, _) = value, entries.count == 1 else {
            throw r.error(value, path, "a stage is one of \(kinds.joined(separator: ", ")) with its settings, e.g. '- sft: {steps: 100}'")
        }
        let (kind, body) = entries[0]
        switch kind {
        case "sft": return .sft(try readSFT(body, path: "\(path).sft", r))
        case "grpo": return try readGRPO(body, path: "\(path).grpo", r)
        default:
            let hint = r.closest(to: kind, in: kinds).map { " (did you mean '\($0)'?)" } ?? ""
            throw r.error(body, "\(path).\(kind)", "unknown stage kind\(hint); known: \(kinds.joined(separator: ", "))")
        }
    }

    /// Index and settings of the sft stage nearest before stage `index`: what an `sft_control` repeats.
    static func controlSource(before index: Int, in stages: [Stage]) -> (index: Int, config: SFTConfig)? {
        for i in stride(from: index - 1, through: 0, by: -1) { if case .sft(let c) = stages[i] { return (i, c) } }
        return nil
    }

    enum ScheduleKind: String, CaseIterable { case constant, warmup_cosine, warmup_step }

    /// The learning-rate schedule of a stage: `schedule` and the keys of that schedule. A key
    /// the chosen schedule does not read (`warmup_steps` with `constant`, `gamma` with
    /// `warmup_cosine`) is an error rather than silently ignored.
    static func readSchedule(_ s: Fields, steps: Int, _ r: RecipeReader) throws -> LearningRateSchedule {
        let kind = try s["schedule"].map { try r.choice($0, s.path("schedule"), as: ScheduleKind.self) } ?? .constant
        let reads: [String]
        switch kind {
        case .constant: reads = []
        case .warmup_cosine: reads = ["warmup_steps", "min_lr_ratio"]
        case .warmup_step: reads = ["warmup_steps", "step_size", "gamma"]
        }
        for key in ["warmup_steps", "min_lr_ratio", "step_size", "gamma"] where s.has(key) && !reads.contains(key) {
            throw r.error(s[key]!, s.path(key), "not used by schedule '\(kind.rawValue)'"
                          + (kind == .constant ? "; set schedule: warmup_cosine or warmup_step" : ""))
        }
        let warmup = try s.int("warmup_steps", default: 0, min: 0)
        switch kind {
        case .constant: return .constant
        case .warmup_cosine:
            return .warmupCosine(warmupSteps: warmup, totalSteps: steps, minRatio: Float(try s.double("min_lr_ratio", default: 0, range: 0...1)))
        case .warmup_step:
            return .warmupStep(warmupSteps: warmup, stepSize: try s.int("step_size", default: max(steps / 3, 1), min: 1),
                               gamma: Float(try s.double("gamma", default: 0.1, range: 0...1)))
        }
    }

    static func readSFT(_ value: RecipeValue, path: String, _ r: RecipeReader) throws -> SFTConfig {
        let s = try r.mapping(value, path, allowed: ["steps", "batch_size", "micro_batch_size", "lr", "schedule", "warmup_steps",
                                                     "min_lr_ratio", "step_size", "gamma", "weight_decay", "beta1", "beta2",
                                                     "max_grad_norm", "max_length", "eval_every", "checkpoint_every"])
        let steps = try r.int(try s.required("steps"), s.path("steps"), min: 1)
        let batch = try s.int("batch_size", default: 32, min: 1)
        // Any size: the batch is split by length (SFTTrainer.microBatches), not cut in equal parts.
        let micro = try s.int("micro_batch_size", default: batch, min: 1)
        let schedule = try readSchedule(s, steps: steps, r)
        return SFTConfig(steps: steps, batchSize: batch, microBatchSize: micro,
                         learningRate: Float(try s.double("lr", default: 1e-3, range: 0...10)),
                         schedule: schedule,
                         weightDecay: Float(try s.double("weight_decay", default: 0.1, range: 0...10)),
                         betas: (Float(try s.double("beta1", default: 0.9, range: 0...1)), Float(try s.double("beta2", default: 0.95, range: 0...1))),
                         maxGradNorm: Float(try s.double("max_grad_norm", default: 1, range: 0...1e6)),
                         maxLength: try s.int("max_length", default: 256, min: 8),
                         evalEvery: try s.int("eval_every", default: 0, min: 0),
                         checkpointEvery: try s.int("checkpoint_every", default: 0, min: 0))
    }

    enum LossKind: String, CaseIterable { case grpo, bnpo, dapo, dr_grpo }
    enum ScalingKind: String, CaseIterable { case group, batch, none }

    static func readGRPO(_ value: RecipeValue, path: String, _ r: RecipeReader) throws -> Stage {
        let s = try r.mapping(value, path, allowed: ["steps", "prompts_per_step", "group_size", "temperature", "top_k", "top_p", "min_p",
                                                     "max_new_tokens", "stop", "beta", "epsilon", "epsilon_high", "loss", "scale_rewards",
                                                     "iterations", "lr", "schedule", "warmup_steps", "min_lr_ratio", "step_size", "gamma", "weight_decay",
                                                     "max_grad_norm", "mask_truncated", "dynamic_sampling", "ref_refresh_every",
                                                     "micro_batch_tokens", "eval_every", "checkpoint_every", "rewards", "prompts", "sft_control"])
        let steps = try r.int(try s.required("steps"), s.path("steps"), min: 1)
        let maxNew = try s.int("max_new_tokens", default: 64, min: 1)
        var sampling = SamplingOptions(temperature: Float(try s.double("temperature", default: 1, range: 0...10)), maxNewTokens: maxNew)
        sampling.topK = try s["top_k"].map { try r.int($0, s.path("top_k"), min: 1) }
        sampling.topP = try s["top_p"].map { Float(try r.double($0, s.path("top_p"), range: 0...1)) }
        sampling.minP = try s["min_p"].map { Float(try r.double($0, s.path("min_p"), range: 0...1)) }
        let aggregation: LossAggregation
        switch try s["loss"].map({ try r.choice($0, s.path("loss"), as: LossKind.self) }) ?? .grpo {
        case .grpo: aggregation = .perSequence
        case .bnpo, .dapo: aggregation = .perToken
        case .dr_grpo: aggregation = .constantLength(maxNew)
        }
        let epsilon = try s.double("epsilon", default: 0.2, range: 0...1)
        let loss = GRPOLossConfig(beta: try s.double("beta", default: 0.04, range: 0...100), epsilonLow: epsilon,
                                  epsilonHigh: try s["epsilon_high"].map { try r.double($0, s.path("epsilon_high"), range: 0...10) },
                                  aggregation: aggregation)
        var config = GRPOConfig(steps: steps, promptsPerStep: try s.int("prompts_per_step", default: 8, min: 1),
                                groupSize: try s.int("group_size", default: 8, min: 2), sampling: sampling, loss: loss,
                                learningRate: Float(try s.double("lr", default: 1e-5, range: 0...10)))
        config.stopStrings = try s["stop"].map { try r.sequence($0, s.path("stop")).enumerated().map { try r.string($1, s.path("stop.\($0)")) } } ?? []
        switch try s["scale_rewards"].map({ try r.choice($0, s.path("scale_rewards"), as: ScalingKind.self) }) ?? .group {
        case .group: config.scaling = .group
        case .batch: config.scaling = .batch
        case .none: config.scaling = .none
        }
        config.iterations = try s.int("iterations", default: 1, min: 1)
        config.schedule = try readSchedule(s, steps: steps, r)
        config.weightDecay = Float(try s.double("weight_decay", default: 0, range: 0...10))
        config.maxGradNorm = Float(try s.double("max_grad_norm", default: 1, range: 0...1e6))
        config.maskTruncated = try s.bool("mask_truncated", default: false)
        config.dynamicSamplingRounds = try s.int("dynamic_sampling", default: 0, min: 0)
        config.refreshReferenceEvery = try s.int("ref_refresh_every", default: 0, min: 0)
        config.microBatchTokens = try s.int("micro_batch_tokens", default: config.microBatchTokens, min: 1)
        config.evalEvery = try s.int("eval_every", default: 0, min: 0)
        config.checkpointEvery = try s.int("checkpoint_every", default: 0, min: 0)
        let rewardList = try r.sequence(try s.required("rewards"), s.path("rewards"))
        if rewardList.isEmpty { throw r.error(try s.required("rewards"), s.path("rewards"), "needs at least one reward") }
        let rewards = try rewardList.enumerated().map { try readReward($1, path: s.path("rewards.\($0)"), r) }
        return .grpo(GRPOStage(config: config, rewards: rewards,
                               prompts: try s["prompts"].map { try existing($0, s.path("prompts"), r, directory: false) },
                               sftControl: try s.bool("sft_control", default: false)))
    }

    static func readReward(_ value: RecipeValue, path: String, _ r: RecipeReader) throws -> RewardSpec {
        let kinds = ["task", "exact_answer", "regex", "length", "repetition", "external", "reward_model"]
        guard case .mapping(let entries, _) = value, entries.count == 1 else {
            throw r.error(value, path, "a reward is one of \(kinds.joined(separator: ", ")) with its settings, e.g. '- task: {weight: 1}'")
        }
        let (kind, body) = entries[0]
        let p = "\(path).\(kind)"
        func fields(_ allowed: [String]) throws -> Fields { try r.mapping(body, p, allowed: allowed + ["weight"]) }
        switch kind {
        case "task":
            let f = try fields(["checker"])
            return .task(try f["checker"].map { try r.choice($0, f.path("checker"), as: TaskKind.self) }, weight: try f.double("weight", default: 1))
        case "exact_answer":
            let f = try fields(["extraction", "field", "tolerance"])
            return .exactAnswer(try f["extraction"].map { try r.choice($0, f.path("extraction"), as: ExactAnswerReward.Extraction.self) } ?? .gsm8k,
                                field: try f.string("field") ?? "answer", tolerance: try f.double("tolerance", default: 0, range: 0...1e12),
                                weight: try f.double("weight", default: 1))
        case "regex":
            let f = try fields(["name", "pattern"])
            let pattern = try r.string(try f.required("pattern"), f.path("pattern"))
            if (try? NSRegularExpression(pattern: pattern)) == nil { throw r.error(f["pattern"]!, f.path("pattern"), "not a valid regular expression") }
            return .regex(name: try f.string("name") ?? "format", pattern: pattern, weight: try f.double("weight", default: 1))
        case "length":
            let f = try fields(["max_length", "cache"])
            let maxLength = try r.int(try f.required("max_length"), f.path("max_length"), min: 1)
            let shape: LengthReward.Shape = f.has("cache") ? .softOverlong(maxLength: maxLength, cache: try f.int("cache", default: 1, min: 1))
                                                           : .linear(maxLength: maxLength)
            return .length(shape, weight: try f.double("weight", default: 1))
        case "repetition":
            let f = try fields(["n", "max_penalty"])
            return .repetition(n: try f.int("n", default: 3, min: 1), maxPenalty: try f.double("max_penalty", default: -1, range: -1e6...0),
                               weight: try f.double("weight", default: 1))
        case "external":
            let f = try fields(["name", "command", "timeout", "fallback"])
            return .external(name: try f.string("name") ?? "external", command: try r.string(try f.required("command"), f.path("command")),
                             timeout: try f.double("timeout", default: 60, range: 0.1...86_400),
                             fallback: try f["fallback"].map { try r.double($0, f.path("fallback")) }, weight: try f.double("weight", default: 1))
        case "reward_model":
            let f = try fields(["name", "path"])
            return .rewardModel(name: try f.string("name") ?? "reward_model",
                                path: try existing(try f.required("path"), f.path("path"), r, directory: true),
                                weight: try f.double("weight", default: 1))
        default:
            let hint = r.closest(to: kind, in: kinds).map { " (did you mean '\($0)'?)" } ?? ""
            throw r.error(body, p, "unknown reward\(hint); known: \(kinds.joined(separator: ", "))")
        }
    }

    /// A plain YAML value as config.json would hold it: integer, number, boolean or string.
    static func yamlScalar(_ s: String) -> Any {
        if let i = Int(s) { return i }
        if let d = Double(s) { return d }
        if s == "true" || s == "false" { return s == "true" }
        return s
    }

    /// A path that must exist (a file, or a folder when `directory`).
    static func existing(_ value: RecipeValue, _ path: String, _ r: RecipeReader, directory: Bool) throws -> URL {
        let p = try r.string(value, path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
            throw r.error(value, path, "'\(p)' does not exist (relative paths are read from \(FileManager.default.currentDirectoryPath))")
        }
        if isDir.boolValue != directory { throw r.error(value, path, "'\(p)' should be a \(directory ? "folder" : "file")") }
        return URL(fileURLWithPath: p)
    }
}
