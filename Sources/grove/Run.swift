import ArgumentParser
import Foundation

/// `grove run RECIPE`: runs a recipe's stages in order, with checkpoints and a final report.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a recipe: its stages in order, with evaluation, checkpoints, run.sqlite and a report.")

    @Argument(help: "The recipe file (Recipes/*.yaml).")
    var recipe: String

    @Flag(help: "Continue from the newest checkpoint in the recipe's output folder.")
    var resume = false

    @Option(name: .customLong("set"), help: "Override one key, e.g. --set stages.0.sft.lr=3e-4 (repeatable).")
    var overrides: [String] = []

    func run() throws {
        let r = try Recipe.load(path: recipe, overrides: overrides)
        try RecipeRunner(recipe: r, resume: resume).run()
    }
}
