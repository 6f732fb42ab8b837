import ArgumentParser
import GroveRun

/// The `grove` command line: one subcommand per file in this folder.
@main
struct Grove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grove",
        abstract: "GRPO alignment for small decoder-only models, on ordinary machines.",
        version: GroveVersion.string,
        subcommands: [Doctor.self, Info.self, Export.self, Tokenize.self, Detokenize.self, Logits.self, Generate.self, Merge.self, Datasets.self, Validate.self, Run.self, Rollouts.self, Rescore.self, Report.self, Bench.self])
}
