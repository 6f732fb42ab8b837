import Foundation
import GroveModel
import GroveTrain

/// The SFT control of a grpo stage with `sft_control: true`: the model the stage started from,
/// trained with the nearest earlier sft stage's settings for as many steps as fit in the GRPO
/// steps' wall time,
///   steps = Σ GRPO step times / mean step time of that sft stage,
/// with its schedule restarted over those steps, then evaluated. The run's model stays GRPO's.
public struct SFTControl: Stage {
    public let kind = "sft_control"
    public let config: SFTConfig
    public var steps: Int { config.steps }
    public var maxSequenceLength: Int { config.maxLength }

    /// Index and settings of the sft stage nearest before stage `index`: what a control repeats.
    static func source(before index: Int, in stages: [any RecipeStage]) -> (index: Int, stage: SFTStage)? {
        for i in stride(from: index - 1, through: 0, by: -1) { if let s = stages[i] as? SFTStage { return (i, s) } }
        return nil
    }

    /// The model the grpo stage starts from, kept for its control: saved to
    /// `output_dir/control-start-<stage>` when the stage begins, read back when it is resumed.
    static func startModel(_ context: StageContext) throws -> Transformer {
        let dir = context.recipe.outputDir.appendingPathComponent("control-start-\(context.index)")
        if context.resume != nil {
            guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("config.json").path) else {
                throw RunError("stage \(context.index) has sft_control but \(dir.path), the model it started from, is missing: the control cannot be run")
            }
            return try Transformer.load(from: dir)
        }
        if context.communicator.rank == 0 { try context.model.save(to: dir) }
        return context.model.clone()
    }

    /// The control of grpo stage `grpoStage`, whose steps took `grpoSeconds`.
    init(grpoStage: Int, grpoSeconds: Double, context: StageContext) throws {
        let source = SFTControl.source(before: grpoStage, in: context.recipe.stages)!
        guard let timing = context.timing(ofStage: source.index), timing.steps > 0 else {
            throw RunError("sft_control of stage \(grpoStage): the step time of stage \(source.index) (sft) is unknown (a checkpoint written by an older Grove?)")
        }
        var config = source.stage.config
        // Rank 0's clock decides for every rank of a data-parallel run: they must run the same steps.
        config.steps = Int(context.communicator.fromRankZero([Double(max(1, Int((grpoSeconds / timing.secondsPerStep).rounded())))])[0])
        config.schedule = config.schedule.stretched(from: source.stage.config.steps, to: config.steps)
        config.evalEvery = 0
        config.checkpointEvery = 0
        self.config = config
        context.log.note("sft_control: \(config.steps) SFT steps from the model stage \(grpoStage) started from (GRPO took \(RunClock.format(grpoSeconds)), SFT \(String(format: "%.2f", timing.secondsPerStep)) s a step)")
    }

    public func dataNeeds(_ recipe: Recipe) -> [DataNeed] { [DataNeed(file: nil, completion: true, checkerFields: false)] }

    public func run(_ context: StageContext) throws {
        try SFTTrainer(model: context.model, data: context.stream(maxLength: config.maxLength), config: config, communicator: context.communicator)
            .train(onEvent: context.log.handle)
    }
}
