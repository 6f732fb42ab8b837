import Foundation
import GroveStore
import XCTest

/// A small run written with RunStore's API: 5 sft steps, 6 grpo steps with rollouts, 4
/// sft_control steps, evaluations at step 0 and after each stage.
enum SampleRun {
    static let completionWithHTML = "<script>alert(1)</script> & <b>42</b>"

    /// Writes the run into a fresh folder and returns the folder.
    static func write() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("grove-report-\(UUID().uuidString)")
        let store = try RunStore(path: dir.appendingPathComponent("run.sqlite"))
        let run = try store.beginRun(name: "tiny <run>", recipePath: nil, recipeText: nil, seed: 0, groveVersion: "test")
        func eval(_ stage: String, _ step: Int, _ accuracy: Double) throws {
            try store.log(run: run, stage: stage, step: step, metrics: [("eval/accuracy", accuracy), ("eval/accuracy/easy", accuracy + 0.1),
                                                                        ("eval/accuracy/hard", accuracy / 2), ("eval/loss", 3 - accuracy)], wallTime: 0)
        }
        try eval("0:sft", 0, 0.1)
        for step in 1...5 {
            try store.log(run: run, stage: "0:sft", step: step, metrics: [("train/loss", 3 - 0.2 * Double(step)), ("train/learning_rate", 1e-3)], wallTime: 1)
        }
        try eval("0:sft", 5, 0.3)
        for step in 1...6 {
            let rollouts = (0..<4).map { i in
                StoredRollout(promptId: step, prompt: "What is \(step)+\(i)?", row: nil, group: 0, sample: i,
                              completion: i == 0 ? completionWithHTML : "answer \(i)", completionIds: [1, 2, 3],
                              finishReason: "stop", reward: Double(i) / 3, rewards: [("exact", Double(i) / 3), ("format", nil)],
                              advantage: Double(i) - 1.5, groupMean: 0.5, groupStd: 0.4, logprobSum: -3)
            }
            // KL is NaN at step 3 (stored NULL): its line must break there.
            try store.logStep(run: run, stage: "1:grpo", step: step, rollouts: rollouts, metrics: [
                ("reward", 0.1 * Double(step)), ("rewards/exact/mean", 0.05 * Double(step)), ("kl", step == 3 ? .nan : 0.01 * Double(step)),
                ("completions/mean_length", 10), ("completions/min_length", 4), ("completions/max_length", 16 + Double(step)),
                ("learning_rate", 1e-5), ("time/generate", 2), ("time/score", 0.1), ("time/train", 1), ("time/step", 3.1),
            ], wallTime: 2)
        }
        try eval("1:grpo", 6, 0.5)
        for step in 1...4 {
            try store.log(run: run, stage: "1:sft_control", step: step, metrics: [("train/loss", 2 - 0.1 * Double(step))], wallTime: 3)
        }
        try eval("1:sft_control", 4, 0.35)
        try store.finishRun(run, status: .finished)
        return dir
    }
}

extension XCTestCase {
    /// The sample run in a fresh folder, removed when the test ends.
    func sampleRun() throws -> URL {
        let dir = try SampleRun.write()
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }
}
