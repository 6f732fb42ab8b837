import ArgumentParser
import Foundation
import GroveConfig
import GroveRollout
import GroveRun
import GroveStore
import GroveTasks
import GroveTrain
import Rewards

/// `grove rollouts DB`: inspect the rollouts a GRPO stage stored in run.sqlite.
struct Rollouts: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect stored rollouts: runs and steps, one step's groups, or one prompt across steps.",
        discussion: """
        grove rollouts runs/x/run.sqlite                       runs, and the steps of the newest
        grove rollouts runs/x/run.sqlite --step 40             step 40's groups: best and worst completion
        grove rollouts runs/x/run.sqlite --prompt 1234         prompt 1234 across steps
        """)

    @Argument(help: "A run database (output_dir/run.sqlite).")
    var database: String

    @Option(name: .customLong("run"), help: "Run id (default: the newest run with rollouts).")
    var runID: Int64?

    @Option(help: "Show this step's groups.")
    var step: Int?

    @Option(help: "Follow this prompt id across steps.")
    var prompt: Int?

    func run() throws {
        guard FileManager.default.fileExists(atPath: database) else { throw RunError("\(database): no such file") }
        let store = try RunStore(path: URL(fileURLWithPath: database))
        let runs = try store.runs()
        let withRollouts = try runs.filter { !(try store.rolloutSteps(run: $0.id)).isEmpty }
        guard let runID = runID ?? withRollouts.last?.id else {
            print("no rollouts in \(database) (runs: \(runs.map { "\($0.id) \($0.name)" }.joined(separator: ", ")))")
            return
        }
        if let step {
            let rows = try store.rollouts(run: runID, step: step)
            guard !rows.isEmpty else { throw RunError("run \(runID) has no rollouts at step \(step)") }
            for (group, items) in Dictionary(grouping: rows, by: \.group).sorted(by: { $0.key < $1.key }) {
                let sorted = items.sorted { ($0.reward ?? -.infinity) > ($1.reward ?? -.infinity) }
                print("── group \(group) · prompt \(items[0].promptId): \(oneLine(items[0].prompt))")
                print("   rewards: " + items.map { $0.reward.map { String(format: "%.2f", $0) } ?? "–" }.joined(separator: " "))
                for (label, r) in [("best", sorted.first!), ("worst", sorted.last!)] {
                    let parts = r.rewards.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.map { String(format: "%.2f", $0) } ?? "–")" }
                    print(String(format: "   %@ A=%+.3f %@ (%@, %d tokens): %@", label, r.advantage, parts.joined(separator: " "),
                                 r.finishReason, r.length, oneLine(r.completion)))
                }
            }
        } else if let prompt {
            let rows = try store.rollouts(run: runID, promptId: prompt)
            guard !rows.isEmpty else { throw RunError("run \(runID) never sampled prompt \(prompt)") }
            print("prompt \(prompt): \(oneLine(rows[0].prompt))")
            for (s, items) in Dictionary(grouping: rows, by: \.step).sorted(by: { $0.key < $1.key }) {
                let rewards = items.compactMap(\.reward)
                let best = items.max { ($0.reward ?? -.infinity) < ($1.reward ?? -.infinity) }!
                print(String(format: "step %4d  mean reward %.3f  best: %@", s, rewards.reduce(0, +) / Double(max(rewards.count, 1)), oneLine(best.completion)))
            }
        } else {
            for r in runs {
                print("run \(r.id) \(r.name) · \(r.status.rawValue) · started \(r.startedAt)")
            }
            print("\nrun \(runID): step, rollouts, mean reward, groups with equal rewards")
            for s in try store.rolloutSteps(run: runID) {
                print(String(format: "  %5d  %4d  %.3f  %.0f%%", s.step, s.rollouts, s.meanReward, 100 * s.zeroStdGroups))
            }
        }
    }
}

/// `grove rescore DB --reward NAME`: scores stored rollouts with another reward and shows how
/// the group advantages change.
struct Rescore: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Score stored rollouts with another reward and compare advantages.")

    @Argument(help: "A run database (output_dir/run.sqlite).")
    var database: String

    @Option(help: ArgumentHelp("A reward as a recipe names it: a bare name, or YAML with its settings.",
                               discussion: "e.g. --reward exact_answer, --reward '{task: {checker: arithmetic}}', --reward '{length: {max_length: 64}}', --reward '{external: {command: python3 r.py}}'"))
    var reward: String

    @Option(name: .customLong("run"), help: "Run id (default: the newest run with rollouts).")
    var runID: Int64?

    @Option(help: "Only this step (default: every step).")
    var step: Int?

    func run() throws {
        let store = try RunStore(path: URL(fileURLWithPath: database))
        let runs = try store.runs().filter { !(try store.rolloutSteps(run: $0.id)).isEmpty }
        guard let runID = runID ?? runs.last?.id else { throw RunError("\(database) holds no rollouts") }
        let scorer = try makeReward()
        let rows = try store.rollouts(run: runID, step: step)
        var changed = 0, total = 0
        for (key, items) in Dictionary(grouping: rows, by: { "\($0.step)/\($0.group)" }).sorted(by: { $0.key < $1.key }) {
            let inputs = items.map { r in
                RewardInput(prompt: r.prompt, completion: r.completion, completionIds: r.completionIds,
                            row: r.row.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] } ?? [:])
            }
            let values = try scorer.score(inputs).values
            let advantages = GroupAdvantage.compute(values, groupSize: items.count, scaling: .group)
            for (r, (v, a)) in zip(items, zip(values, advantages)) {
                total += 1
                if abs(a - r.advantage) > 1e-6 { changed += 1 }
                if step != nil {
                    print(String(format: "%@ #%d  old r=%@ A=%+.3f → new r=%@ A=%+.3f  %@", key, r.sample, r.reward.map { String(format: "%.2f", $0) } ?? "–",
                                 r.advantage, v.map { String(format: "%.2f", $0) } ?? "–", a, oneLine(r.completion)))
                }
            }
        }
        print("\(scorer.name): \(changed) of \(total) advantages change")
    }

    /// The reward `--reward` names, read as a recipe's `rewards:` entry is (`RewardRegistry`).
    func makeReward() throws -> Reward {
        do {
            let value = try RecipeValue.parse(reward, file: "--reward")
            let spec = try RewardRegistry.read(value, path: "", RecipeReader(file: "--reward"))
            return try spec.build(RewardContext(warn: { FileHandle.standardError.write(Data("warning: \($0)\n".utf8)) }))
        } catch let error as RecipeError {
            // Named as the option, not as a file and line: `--reward length.max_length: expected …`.
            let key = error.path.hasPrefix(".") ? String(error.path.dropFirst()) : error.path
            throw ValidationError("--reward \(key.isEmpty ? "" : key + ": ")\(error.message)")
        }
    }
}

/// A completion or prompt on one line, shortened.
func oneLine(_ s: String, limit: Int = 100) -> String {
    let flat = s.replacingOccurrences(of: "\n", with: "⏎")
    return flat.count > limit ? String(flat.prefix(limit)) + "…" : flat
}
