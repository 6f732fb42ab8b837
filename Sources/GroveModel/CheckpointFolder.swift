import Foundation
import GroveTensor

/// A Hugging Face model folder's weights: `model.safetensors`, or shards named by
/// `model.safetensors.index.json` (`weight_map`: tensor name → shard file).
public enum CheckpointFolder {
    static let single = "model.safetensors"
    static let index = "model.safetensors.index.json"

    /// Every tensor of the folder, by name, with the file each came from (for error messages).
    public static func loadWeights(from dir: URL) throws -> [String: (tensor: Tensor, file: String)] {
        let fm = FileManager.default
        guard fm.fileExists(atPath: dir.path) else { throw ModelError.missingFile(path: dir.path, hint: "model folder") }
        var shards: [String]
        let indexURL = dir.appendingPathComponent(index)
        if fm.fileExists(atPath: dir.appendingPathComponent(single).path) {
            shards = [single]
        } else if let data = fm.contents(atPath: indexURL.path) {
            guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
                  let map = json["weight_map"] as? [String: String] else {
                throw ModelError.badConfig(file: indexURL.path, key: "weight_map", problem: "missing or not a name → file mapping")
            }
            shards = Array(Set(map.values)).sorted()
        } else {
            throw ModelError.missingFile(path: dir.appendingPathComponent(single).path,
                                         hint: "expected model.safetensors or model.safetensors.index.json")
        }
        var out: [String: (tensor: Tensor, file: String)] = [:]
        for shard in shards {
            let url = dir.appendingPathComponent(shard)
            guard fm.fileExists(atPath: url.path) else {
                throw ModelError.missingFile(path: url.path, hint: "shard listed in \(index)")
            }
            for (name, t) in try SafetensorsFile.read(url) { out[name] = (t, url.path) }
        }
        return out
    }

    /// Writes tensors as one `model.safetensors`, or as `model-0000i-of-0000N.safetensors`
    /// shards plus the index when they exceed `maxShardBytes` (transformers' names).
    public static func saveWeights(_ tensors: [(String, Tensor)], to dir: URL, maxShardBytes: Int = 2_000_000_000) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let total = tensors.reduce(0) { $0 + $1.1.count * 4 }
        if total <= maxShardBytes {
            try SafetensorsFile.write(tensors, to: dir.appendingPathComponent(single))
            return
        }
        var shards: [[(String, Tensor)]] = [[]]
        var size = 0
        for (name, t) in tensors.sorted(by: { $0.0 < $1.0 }) {
            if size > 0 && size + t.count * 4 > maxShardBytes { shards.append([]); size = 0 }
            shards[shards.count - 1].append((name, t))
            size += t.count * 4
        }
        var weightMap: [String: String] = [:]
        for (i, shard) in shards.enumerated() {
            let file = String(format: "model-%05d-of-%05d.safetensors", i + 1, shards.count)
            try SafetensorsFile.write(shard, to: dir.appendingPathComponent(file))
            for (name, _) in shard { weightMap[name] = file }
        }
        let json: [String: Any] = ["metadata": ["total_size": total], "weight_map": weightMap]
        let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
        try writeAtomically(data, to: dir.appendingPathComponent(index))
    }
}

extension Transformer {
    /// Loads a Hugging Face model folder: config.json, then every weight, checked by name and shape.
    /// A PEFT adapter folder loads as its base model with the adapter (`load(adapter:)`), a
    /// `.gguf` file with `load(gguf:)`.
    public static func load(from dir: URL) throws -> Transformer {
        if GGUFFile.isGGUF(dir) { return try load(gguf: dir) }
        if AdapterFolder.isAdapter(dir) { return try load(adapter: dir) }
        return try loadModel(from: dir)
    }

    /// `load` of a model folder only.
    static func loadModel(from dir: URL) throws -> Transformer {
        let config = try ModelConfig.load(from: dir)
        let model = Transformer(config: config, seed: 0)
        try model.loadWeights(try CheckpointFolder.loadWeights(from: dir), folder: dir.path)
        model.nameOrPath = dir.path
        return model
    }

    /// Copies named weights into the parameters; every parameter must be present with its shape.
    public func loadWeights(_ weights: [String: (tensor: Tensor, file: String)], folder: String) throws {
        let mine = namedParameters + namedBuffers
        let known = Set(mine.map(\.0))
        for (name, w) in weights where !known.contains(name) {
            // A tied head may still be saved; rotary buffers are not weights.
            if name == "lm_head.weight" && config.tieWordEmbeddings { continue }
            if name.hasSuffix("rotary_emb.inv_freq") { continue }
            // DeepSeek-V3's multi-token-prediction layers come after the last layer; transformers skips them too.
            if config.modelType == .deepseekV3 && name.hasPrefix("model.layers.\(config.numHiddenLayers).") { continue }
            throw ModelError.unexpectedTensor(file: w.file, tensor: name)
        }
        for (name, p) in mine {
            guard let w = weights[name] else { throw ModelError.missingTensor(file: folder, tensor: name) }
            guard w.tensor.shape == p.shape else {
                throw ModelError.shapeMismatch(file: w.file, tensor: name, expected: p.shape, found: w.tensor.shape)
            }
            p.copy(from: w.tensor)
        }
    }

    /// Saves config.json and float32 safetensors in the Hugging Face layout; a model with an
    /// adapter saves only the adapter (PEFT's `save_pretrained`), naming the base it was loaded from.
    public func save(to dir: URL, maxShardBytes: Int = 2_000_000_000) throws {
        if adapter != nil { return try AdapterFolder.save(self, to: dir) }
        try config.save(to: dir)
        try CheckpointFolder.saveWeights(namedParameters + namedBuffers, to: dir, maxShardBytes: maxShardBytes)
    }

    /// Throws if any id is outside the vocabulary (user input, before it reaches a kernel).
    public func checkTokens(_ ids: [Int32]) throws {
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
            throw ModelError.tokenOutOfRange(id: Int(bad), vocabSize: config.vocabSize)
        }
    }
}

extension Transformer {
    /// A copy with the same configuration, weights and adapter (the GRPO reference model).
    public func clone() -> Transformer {
        let copy = Transformer(config: config, seed: 0)
        copy.nameOrPath = nameOrPath
        if let adapter { copy.addAdapter(adapter, seed: 0) }
        copy.copyWeights(from: self)
        return copy
    }

    /// Overwrites every weight and adapter matrix with `other`'s (same configuration and adapter).
    public func copyWeights(from other: Transformer) {
        precondition(adapter == other.adapter, "copyWeights: the adapters differ")
        for ((_, mine), (_, theirs)) in zip(namedParameters + namedBuffers + adapterParameters,
                                            other.namedParameters + other.namedBuffers + other.adapterParameters) {
            mine.copy(from: theirs)
        }
    }
}
