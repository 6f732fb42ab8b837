import Foundation

/// Training progress for people: an updating bar on a terminal, plain log lines otherwise.
final class Progress {
    let interactive = isatty(STDOUT_FILENO) != 0
    private var lastPrint = 0.0
    private let started = Date()
    private var lastLength = 0

    /// Seconds since the run started.
    var elapsed: Double { Date().timeIntervalSince(started) }

    /// One step's line: `[sft] 120/800 ━━━━━━──────── loss 0.532 · 12.3k tok/s · ETA 4:12`.
    func step(stage: String, step: Int, of total: Int, stageStart: Double, firstStep: Int, fields: [String]) {
        let done = Double(step - firstStep), rate = done / max(elapsed - stageStart, 1e-9)
        let eta = rate > 0 ? Double(total - step) / rate : 0
        let width = 24, filled = Int(Double(width) * Double(step) / Double(max(total, 1)))
        let bar = String(repeating: "━", count: filled) + String(repeating: "─", count: width - filled)
        let line = "[\(stage)] \(step)/\(total) \(bar) \(fields.joined(separator: " · ")) · ETA \(Progress.clock(eta))"
        if interactive {
            let padded = line.padding(toLength: max(line.count, lastLength), withPad: " ", startingAt: 0)
            FileHandle.standardOutput.write(Data(("\r" + padded).utf8))
            lastLength = line.count
            if step == total { print("") }
        } else if elapsed - lastPrint >= 10 || step == total || step == firstStep + 1 {
            print("[\(stage)] step \(step)/\(total) \(fields.joined(separator: " ")) eta \(Progress.clock(eta))")
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

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
