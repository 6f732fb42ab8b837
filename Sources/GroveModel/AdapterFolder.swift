import Foundation
import GroveTensor

/// A LoRA adapter folder exactly as PEFT's `save_pretrained` writes one, so that either side
/// reads the other's: `adapter_config.json` (PEFT's `LoraConfig` fields) and
/// `adapter_model.safetensors`, whose keys are PEFT's parameter names without the adapter name,
/// `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight` ([r, in]; lora_B [out, r]).
public enum AdapterFolder {
    public static let configFile = "adapter_config.json"
    public static let weightsFile = "adapter_model.safetensors"
    /// What PEFT's `PeftModel` puts before the model's own parameter names.
    static let prefix = "base_model.model."

    /// Whether `dir` holds an adapter (and no model of its own).
    public static func isAdapter(_ dir: URL) -> Bool {
        let fm = FileManager.default
        return fm.fileExists(atPath: dir.appendingPathComponent(configFile).path)
            && !fm.fileExists(atPath: dir.appendingPathComponent("config.json").path)
    }

    /// The adapter's settings and the base model it names (`base_model_name_or_path`).
    public static func readConfig(from dir: URL) throws -> (config: LoRAConfig, base: String?) {
        let file = dir.appendingPathComponent(configFile)
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw ModelError.missingFile(path: file.path, hint: "a PEFT adapter folder holds adapter_config.json")
        }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ModelError.badConfig(file: file.path, key: "", problem: "not a JSON object")
        }
        func unsupported(_ key: String, _ value: Any, _ supported: String) -> ModelError {
            ModelError.unsupported(file: file.path, key: key, value: "\(value)", supported: supported)
        }
        if let kind = json["peft_type"] as? String, kind != "LORA" { throw unsupported("peft_type", kind, "LORA") }
        if let bias = json["bias"] as? String, bias != "none" { throw unsupported("bias", bias, "none") }
        // Settings that change what the adapter computes, which Grove does not implement: each must be off.
        for key in ["fan_in_fan_out", "use_dora", "lora_bias", "use_qalora"] where (json[key] as? Bool) == true {
            throw unsupported(key, true, "false")
        }
        for key in ["rank_pattern", "alpha_pattern"] where !((json[key] as? [String: Any])?.isEmpty ?? true) {
            throw unsupported(key, json[key]!, "{}")
        }
        for key in ["modules_to_save", "layers_to_transform", "layer_replication", "target_parameters", "trainable_token_indices"]
            where !(json[key] == nil || json[key] is NSNull) {
            throw unsupported(key, json[key]!, "null")
        }
        let targets: [String]
        if let list = json["target_modules"] as? [String] { targets = list }
        else if let one = json["target_modules"] as? String, one == "all-linear" { targets = [one] }
        else { throw unsupported("target_modules", json["target_modules"] ?? "nothing", "a list of module names or \"all-linear\"") }
        guard let r = (json["r"] as? NSNumber)?.intValue, let alpha = (json["lora_alpha"] as? NSNumber)?.doubleValue else {
            throw ModelError.badConfig(file: file.path, key: "r", problem: "r and lora_alpha must be numbers")
        }
        do {
            let config = try LoRAConfig(r: r, alpha: alpha, dropout: (json["lora_dropout"] as? NSNumber)?.doubleValue ?? 0,
                                        targetModules: targets, useRslora: (json["use_rslora"] as? Bool) ?? false)
            return (config, json["base_model_name_or_path"] as? String)
        } catch let error as LoRAConfig.Invalid {
            throw ModelError.badConfig(file: file.path, key: error.key, problem: error.problem)
        }
    }

    /// adapter_config.json with every field PEFT 0.21 writes, at its default unless it is ours.
    static func configJSON(_ config: LoRAConfig, base: String) -> [String: Any] {
        let null = NSNull()
        let alpha: Any = config.alpha == config.alpha.rounded() ? Int(config.alpha) : config.alpha
        return [
            "alora_invocation_tokens": null, "alpha_pattern": [String: Any](), "arrow_config": null, "auto_mapping": null,
            "base_model_name_or_path": base, "bias": "none", "corda_config": null, "ensure_weight_tying": false, "eva_config": null,
            "exclude_modules": null, "fan_in_fan_out": false, "inference_mode": true, "init_lora_weights": true, "kasa_config": null,
            "layer_replication": null, "layers_pattern": null, "layers_to_transform": null, "loftq_config": [String: Any](),
            "lora_alpha": alpha, "lora_bias": false, "lora_dropout": config.dropout, "lora_ga_config": null, "megatron_config": null,
            "megatron_core": "megatron.core", "modules_to_save": null, "monteclora_config": null, "peft_type": "LORA",
            "peft_version": "0.21.2", "qalora_group_size": 16, "r": config.r, "rank_pattern": [String: Any](), "revision": null,
            "target_modules": config.targetModules, "target_parameters": null, "task_type": "CAUSAL_LM",
            "trainable_token_indices": null, "use_bdlora": null, "use_dora": false, "use_qalora": false,
            "use_rslora": config.useRslora, "velora_config": null,
        ]
    }

    /// Writes `model`'s adapter to `dir`; the base is named by the folder it was loaded from.
    public static func save(_ model: Transformer, to dir: URL) throws {
        guard let config = model.adapter else { preconditionFailure("AdapterFolder.save: the model has no adapter") }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let data = try JSONSerialization.data(withJSONObject: configJSON(config, base: model.nameOrPath ?? ""),
                                              options: [.prettyPrinted, .sortedKeys])
        try writeAtomically(data, to: dir.appendingPathComponent(configFile))
        try SafetensorsFile.write(model.adapterParameters.map { (prefix + $0.0, $0.1) }, to: dir.appendingPathComponent(weightsFile))
    }

    /// Adds the adapter of `dir` to `model` (which has none): every matrix must be present with its shape.
    public static func load(into model: Transformer, from dir: URL) throws {
        let (config, _) = try readConfig(from: dir)
        let url = dir.appendingPathComponent(weightsFile)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw ModelError.missingFile(path: url.path, hint: "a PEFT adapter folder holds adapter_model.safetensors")
        }
        var saved = Dictionary(try SafetensorsFile.read(url), uniquingKeysWith: { a, _ in a })
        model.addAdapter(config, seed: 0)
        for (name, p) in model.adapterParameters {
            guard let w = saved.removeValue(forKey: prefix + name) else { throw ModelError.missingTensor(file: url.path, tensor: prefix + name) }
            guard w.shape == p.shape else { throw ModelError.shapeMismatch(file: url.path, tensor: prefix + name, expected: p.shape, found: w.shape) }
            p.copy(from: w)
        }
        if let extra = saved.keys.sorted().first { throw ModelError.unexpectedTensor(file: url.path, tensor: extra) }
    }
}

extension Transformer {
    /// A base model with the adapter of `dir`; the base is `base`, or the folder adapter_config.json
    /// names (`base_model_name_or_path`, relative to the current directory).
    public static func load(adapter dir: URL, base: URL? = nil) throws -> Transformer {
        let named = try AdapterFolder.readConfig(from: dir).base
        guard let baseDir = base ?? named.flatMap({ $0.isEmpty ? nil : URL(fileURLWithPath: $0) }) else {
            throw ModelError.badConfig(file: dir.appendingPathComponent(AdapterFolder.configFile).path, key: "base_model_name_or_path",
                                       problem: "names no base model; give the base folder")
        }
        let model = try Transformer.loadModel(from: baseDir)
        try AdapterFolder.load(into: model, from: dir)
        return model
    }
}
