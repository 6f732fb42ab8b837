import ArgumentParser
import Foundation
import GroveReport

/// `grove report RUN_DIR`: the run's charts, GRPO-versus-control comparison and sample rollouts
/// as one self-contained HTML file.
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a run's report (RUN_DIR/report.html) from RUN_DIR/run.sqlite: one HTML file, no network needed.")

    @Argument(help: "A run's output folder (the recipe's output_dir, holding run.sqlite).")
    var runDirectory: String

    @Option(help: "Write the report here instead of RUN_DIR/report.html.")
    var output: String?

    func run() throws {
        // A missing run.sqlite is a ReportError that says so (nothing is created).
        let file = try HTMLReport.write(runDirectory: URL(fileURLWithPath: runDirectory), output: output.map { URL(fileURLWithPath: $0) })
        print(file.path)
    }
}
