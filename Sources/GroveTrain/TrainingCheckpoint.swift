import Foundation
import GroveModel
import GroveTensor
import GroveTokenizer

/// Where a run stands: which stage, how many of its steps are done, where its data stream is.
public struct TrainerState: Codable, Equatable {
    public var stageIndex: Int
    public var step: Int
    public var dataPosition: TrainingStream.Position
    public var seed: UInt64
    /// Id of the run (in run.sqlite) that wrote this checkpoint.
    public var runID: Int64
    /// Whether the folder holds a GRPO reference model (`reference/`).
    public var hasReference: Bool
    /// Wall time of this stage's steps so far (optional: checkpoints of older versions lack it).
    public var stepSeconds: Double?
    /// Step counts and step times of the stages finished before this one.
    public var finishedStages: [StageTiming]?

    public init(stageIndex: Int, step: Int, dataPosition: TrainingStream.Position, seed: UInt64, runID: Int64, hasReference: Bool = false,
                stepSeconds: Double? = nil, finishedStages: [StageTiming]? = nil) {
        self.stageIndex = stageIndex; self.step = step; self.dataPosition = dataPosition; self.seed = seed; self.runID = runID
        self.hasReference = hasReference; self.stepSeconds = stepSeconds; self.finishedStages = finishedStages
    }
}

/// How many steps a stage took and their wall time (an SFT control's step count is another
/// stage's time over this one's mean step time).
public struct StageTiming: Codable, Equatable {
    public var stage: Int
    public var steps: Int
    public var seconds: Double
    public init(stage: Int, steps: Int, seconds: Double) { self.stage = stage; self.steps = steps; self.seconds = seconds }
    public var secondsPerStep: Double { seconds / Double(max(steps, 1)) }
}

/// A checkpoint folder: the model in Hugging Face layout (config.json, model.safetensors,
/// tokenizer files), `optimizer.safetensors` (AdamW moments), `trainer_state.json`, and for a
/// GRPO stage with β > 0 the reference model in `reference/`.
///
/// Folders are written under a temporary name and renamed into place when complete, so the
/// latest checkpoint is never half-written, whenever the process dies.
public enum TrainingCheckpoint {
    static let prefix = "checkpoint-"

    /// Folder name: stage and step, zero-padded so names sort in training order.
    public static func name(stage: Int, step: Int) -> String { prefix + String(format: "s%02d-%07d", stage, step) }

    public static func save(model: Transformer, tokenizer: Tokenizer, optimizer: AdamW, state: TrainerState,
                            reference: Transformer? = nil, under root: URL) throws -> URL {
        var state = state
        state.hasReference = reference != nil
        let final = root.appendingPathComponent(name(stage: state.stageIndex, step: state.step))
        let temp = root.appendingPathComponent(".tmp-" + final.lastPathComponent)
        let fm = FileManager.default
        try? fm.removeItem(at: temp)
        try fm.createDirectory(at: temp, withIntermediateDirectories: true)
        try model.save(to: temp)
        try tokenizer.save(to: temp)
        try optimizer.writeState(to: temp.appendingPathComponent("optimizer.safetensors"))
        try reference?.save(to: temp.appendingPathComponent("reference"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(state).write(to: temp.appendingPathComponent("trainer_state.json"))
        try? fm.removeItem(at: final)
        try fm.moveItem(at: temp, to: final)
        return final
    }

    /// The complete checkpoints under `root`, oldest first.
    public static func all(under root: URL) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.filter { $0.hasPrefix(prefix) }.sorted().map { root.appendingPathComponent($0) }
    }

    /// The newest complete checkpoint under `root`, if any.
    public static func latest(under root: URL) -> URL? { all(under: root).last }

    /// Removes all but the newest `keep` checkpoints under `root`.
    public static func prune(under root: URL, keep: Int) throws {
        for dir in all(under: root).dropLast(keep) { try FileManager.default.removeItem(at: dir) }
    }

    /// Reads a checkpoint's trainer state and optimizer moments (the model loads with `Transformer.load`).
    public static func loadState(from dir: URL) throws -> (state: TrainerState, optimizer: [String: Tensor]) {
        let stateFile = dir.appendingPathComponent("trainer_state.json")
        guard let data = FileManager.default.contents(atPath: stateFile.path) else {
            throw ModelError.missingFile(path: stateFile.path, hint: "a checkpoint folder holds trainer_state.json")
        }
        let state: TrainerState
        do { state = try JSONDecoder().decode(TrainerState.self, from: data) } catch {
            throw ModelError.badConfig(file: stateFile.path, key: "", problem: "not a trainer state: \(error)")
        }
        let optimizer = Dictionary(uniqueKeysWithValues: try SafetensorsFile.read(dir.appendingPathComponent("optimizer.safetensors")))
        return (state, optimizer)
    }
}
