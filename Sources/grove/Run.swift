import ArgumentParser
import Foundation
import GroveMPI
import GroveReport
import GroveRun
import GroveTrain
import Rewards

/// `grove run RECIPE`: runs a recipe's stages in order, with checkpoints and a final report.
/// Under `mpirun -np N` the N processes train one model data-parallel (`RecipeRun`); rank 0 prints
/// and writes, and a rank that fails ends the whole job with its rank in the message.
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
        guard MPICommunicator.launchedByMPI else { return try run(SingleProcess()) }
        let world = try MPICommunicator()
        do {
            try run(world)
            world.finish()
        } catch {
            // A disagreement between ranks is found by all of them: rank 0 reports it, the others
            // wait for its abort rather than race it (two aborts garble mpirun's message).
            if error is DataParallelError && world.rank != 0 {
                let until = Date().addingTimeInterval(30)
                while Date() < until { sleep(1) }  // a signal cuts a sleep short
            }
            FileHandle.standardError.write(Data("grove: rank \(world.rank) of \(world.size) stopped the job: \(error)\n".utf8))
            world.abort(code: 1)
        }
    }

    func run(_ world: Communicator) throws {
        let r = try Recipe.load(path: recipe, overrides: overrides)
        try world.requireSameRun(recipeText: r.text, overrides: overrides)
        let progress = Progress()
        let run = RecipeRun(recipe: r, resume: resume, communicator: world, observer: world.rank == 0 ? progress.show : { _ in })
        run.checkReplicas = ProcessInfo.processInfo.environment["GROVE_CHECK_REPLICAS"] == "1"
        if resume && run.isFinished {
            if world.rank == 0 {
                print("\(r.outputDir.path): this run has finished; there is nothing to resume (remove the folder or change output_dir to run it again)")
            }
            return
        }
        // Ctrl-C or a polite kill: record the run as interrupted (checkpoints stay), then exit.
        // Under mpirun a signal is how mpirun stops every rank when one fails (it names that rank).
        let launcher = world.size > 1 ? ["mpirun", "-np", "\(world.size)", "…"] : []
        let again = (launcher + ["grove", "run", recipe] + overrides.map { "--set \(shellQuoted($0))" } + ["--resume"]).joined(separator: " ")
        let why = world.size > 1 ? "rank \(world.rank) of \(world.size) stopped by mpirun (another rank failed or the job was interrupted)" : "interrupted"
        let signals = [SIGINT, SIGTERM].map { sig -> DispatchSourceSignal in
            Foundation.signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                run.markInterrupted(world.size > 1 ? "\(why), signal \(sig)" : "stopped by signal \(sig)")
                ExternalProgramReward.killAll()  // reward programs end with the run
                FileHandle.standardError.write(Data("\ngrove: \(why); continue with `\(again)`\n".utf8))
                Foundation.exit(130)
            }
            source.resume()
            return source
        }
        defer { signals.forEach { $0.cancel() } }
        let report = try run.run()
        guard world.rank == 0 else { return }
        let html: URL?
        do { html = try HTMLReport.write(runDirectory: r.outputDir) } catch {
            progress.note("warning: report.html was not written: \(error)")
            html = nil
        }
        progress.note(report.text(html: html))
    }
}

/// A word as a shell reads it back (quoted when it holds anything but safe characters).
func shellQuoted(_ s: String) -> String {
    s.allSatisfy { $0.isLetter || $0.isNumber || "._-=/:,+@".contains($0) } ? s : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

extension RunReport {
    /// The report as the terminal shows it.
    func text(html: URL?) -> String {
        func pct(_ v: Double?) -> String { v.map { String(format: "%5.1f%%", 100 * $0) } ?? "    –" }
        var lines = ["", "== \(name): report =="]
        if let b = before?.accuracy, let a = final?.accuracy {
            lines.append(String(format: "held-out accuracy: %.1f%% → %.1f%% (%d problems)", 100 * b, 100 * a, heldOut))
        } else if let a = final?.accuracy {
            lines.append(String(format: "held-out accuracy: %.1f%%", 100 * a))
        }
        for (level, a) in final?.accuracyByLevel ?? [] { lines.append(String(format: "  %@: %.1f%%", level, 100 * a)) }
        if let l = final?.loss { lines.append(String(format: "held-out loss: %.4f", l)) }
        lines.append("stages (held-out accuracy at start → end):")
        for s in stages {
            let note = s.kind == "sft_control" ? "  (the same time of further SFT from the GRPO stage's start)" : ""
            lines.append("  " + s.label.padding(toLength: 16, withPad: " ", startingAt: 0)
                         + String(format: "%6d steps  %@ → %@  %@", s.steps, pct(s.start?.accuracy), pct(s.end.accuracy), RunClock.format(s.seconds)) + note)
        }
        lines.append(String(format: "training time: %@ (%.0f tokens/s); whole run %@", RunClock.format(trainSeconds),
                            trainTokens / max(trainSeconds, 1e-9), RunClock.format(wallSeconds)))
        lines.append("model: \(finalModel.path)")
        lines.append("metrics: \(database.path)")
        if let html { lines.append("report: \(html.path)") }
        return lines.joined(separator: "\n")
    }
}
