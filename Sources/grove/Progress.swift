import Foundation
import GroveRun
import GroveTrain

/// Training progress for people: an updating bar on a terminal (cut to its width), plain log
/// lines otherwise.
final class Progress {
    let interactive = isatty(STDOUT_FILENO) != 0
    private var lastPrint = 0.0
    private let started = Date()
    private var lastLength = 0
    /// The stage whose steps are showing: its label, when its first step here began, and the step before it.
    private var stage = (label: "", start: 0.0, firstStep: 0)

    /// Seconds since the run started.
    var elapsed: Double { Date().timeIntervalSince(started) }

    /// Shows one event of a run.
    func show(_ event: RunEvent) {
        switch event {
        case .note(let text): note(text)
        case .warning(let text): note("warning: \(text)")
        case .evaluation(_, let kind, let step, let metrics): note("[\(kind)] step \(step): " + metrics.summary)
        case .step(let label, let kind, let report):
            if label != stage.label { stage = (label, elapsed - report.seconds, report.step - 1) }
            step(stage: kind, step: report.step, of: report.of, fields: Progress.fields(report.metrics))
        }
    }

    /// One step's line: `[sft] 120/800 ━━━━━━──────── loss 0.532 · 12.3k tok/s · ETA 4:12`.
    func step(stage kind: String, step: Int, of total: Int, fields: [String]) {
        let done = Double(step - stage.firstStep), rate = done / max(elapsed - stage.start, 1e-9)
        let eta = rate > 0 ? Double(total - step) / rate : 0
        let width = 24, filled = Int(Double(width) * Double(step) / Double(max(total, 1)))
        let bar = String(repeating: "━", count: filled) + String(repeating: "─", count: width - filled)
        if interactive {
            var line = "[\(kind)] \(step)/\(total) \(bar) \(fields.joined(separator: " · ")) · ETA \(RunClock.format(eta))"
            let columns = Progress.terminalColumns()
            if line.count >= columns { line = String(line.prefix(columns - 2)) + "…" }
            let padded = line.padding(toLength: max(line.count, lastLength), withPad: " ", startingAt: 0)
            FileHandle.standardOutput.write(Data(("\r" + padded).utf8))
            lastLength = line.count
            if step == total { print(""); lastLength = 0 }
        } else if elapsed - lastPrint >= 10 || step == total || step == stage.firstStep + 1 {
            print("[\(kind)] step \(step)/\(total) \(fields.joined(separator: " ")) eta \(RunClock.format(eta))")
            fflush(stdout)
            lastPrint = elapsed
        }
    }

    /// A line that interrupts the bar (evaluations, checkpoints, warnings).
    func note(_ text: String) {
        if interactive && lastLength > 0 { FileHandle.standardOutput.write(Data(("\r" + String(repeating: " ", count: lastLength) + "\r").utf8)) }
        print(text)
        fflush(stdout)
        lastLength = 0
    }

    /// The terminal's width in columns (80 when it cannot be asked).
    static func terminalColumns() -> Int {
        var size = winsize()
        return ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 10 ? Int(size.ws_col) : 80
    }

    /// The progress line's fields for a step's metrics.
    static func fields(_ metrics: any StepMetrics) -> [String] {
        switch metrics {
        case let m as SFTStepMetrics:
            return [String(format: "loss %.4f", m.loss), String(format: "lr %.2e", m.learningRate),
                    String(format: "%.0f tok/s", m.tokens / m.seconds)]
        case let m as GRPOStepMetrics:
            return [String(format: "reward %.3f±%.3f", m.reward, m.rewardStd), String(format: "kl %.4f", m.kl),
                    String(format: "clip %.2f/%.2f", m.clipLow, m.clipHigh), String(format: "H %.2f", m.entropy),
                    String(format: "len %.0f [%.0f–%.0f]", m.meanLength, m.minLength, m.maxLength),
                    String(format: "trunc %.2f", m.truncatedShare), String(format: "0-std %.2f", m.zeroStdShare),
                    String(format: "gen/score/train %.1f/%.1f/%.1fs", m.generateSeconds, m.scoreSeconds, m.trainSeconds)]
        default:
            return metrics.named.prefix(4).map { String(format: "%@ %.4g", $0.0, $0.1) }
        }
    }
}
