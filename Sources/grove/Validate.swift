import ArgumentParser
import GroveRun

/// `grove validate RECIPE`: checks a recipe without running it.
struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check a recipe: keys, types, values and files.")

    @Argument(help: "The recipe file.")
    var recipe: String

    @Option(name: .customLong("set"), help: "Override one key, e.g. --set stages.0.sft.lr=3e-4 (repeatable).")
    var overrides: [String] = []

    func run() throws {
        let r = try Recipe.load(path: recipe, overrides: overrides)
        try r.checkRows(tokenizer: try r.rowTokenizer())
        print("\(recipe): valid — \(r.stages.count) stage\(r.stages.count == 1 ? "" : "s") (\(r.stages.map(\.kind).joined(separator: ", "))), output in \(r.outputDir.path)")
    }
}
