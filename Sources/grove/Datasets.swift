import ArgumentParser
import Foundation
import GroveTasks

/// `grove datasets generate TASK`: writes a built-in task's train and eval JSONL files.
struct Datasets: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datasets", abstract: "Generate the built-in task datasets.", subcommands: [Generate.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write TASK's train.jsonl and eval.jsonl (eval problems never occur in train).")

        enum Task: String, ExpressibleByArgument, CaseIterable { case arithmetic, countdown }

        @Argument(help: "arithmetic or countdown.")
        var task: Task

        @Option(help: "Output folder (default: Datasets/TASK).")
        var out: String?

        @Option(help: "Training rows.")
        var trainSize = 12_000

        @Option(help: "Held-out rows.")
        var evalSize = 500

        @Option(help: "Seed of the training rows (the held-out rows use seed + 1).")
        var seed: UInt64 = 0

        @Option(help: "Arithmetic only: comma-separated levels of equal weight, e.g. add5,sub5 (default: the quickstart mix).")
        var levels: String?

        @Option(help: "Arithmetic only: also write the first N training rows as demos.jsonl (the quickstart's SFT data; 0: skip).")
        var demos = 1_000

        @Option(help: "Arithmetic only: append the next N training rows to demos.jsonl with the answer alone, no worked steps (as many real datasets give them).")
        var answerOnlyDemos = 1_000

        @Option(help: "Arithmetic only: the levels of prompts.jsonl, the training rows after the demos at these levels without their worked solutions (the quickstart's GRPO prompts).")
        var promptLevels = "add4,add5,sub3,sub4,mul3"

        func run() throws {
            guard levels == nil || task == .arithmetic else { throw ValidationError("--levels applies to the arithmetic task only") }
            let dir = URL(fileURLWithPath: out ?? "Datasets/\(task.rawValue)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let train: [TaskRow], eval: [TaskRow]
            switch task {
            case .arithmetic:
                let mix = try levels.map { try Generate.mix($0) } ?? ArithmeticTask.defaultMix
                train = ArithmeticTask.generate(count: trainSize, seed: seed, mix: mix)
                eval = ArithmeticTask.generate(count: evalSize, seed: seed + 1, mix: mix, excluding: Set(train.map(\.prompt)))
            case .countdown:
                train = CountdownTask.generate(count: trainSize, seed: seed)
                eval = CountdownTask.generate(count: evalSize, seed: seed + 1, excluding: Set(train.map(\.prompt)))
            }
            try TaskRow.writeJSONL(train, to: dir.appendingPathComponent("train.jsonl"))
            try TaskRow.writeJSONL(eval, to: dir.appendingPathComponent("eval.jsonl"))
            print("wrote \(train.count) training and \(eval.count) held-out rows to \(dir.path)")
            if task == .arithmetic && demos > 0 {
                // Few worked solutions, many checkable problems: SFT learns from the demos, GRPO
                // from the answers of the harder problems it never saw solved. Half the demos give
                // the answer alone: SFT imitates both styles, GRPO finds which one pays.
                let levels = Set(try Generate.mix(promptLevels).map { $0.0.name })
                let worked = train.prefix(demos), answerOnly = train.dropFirst(demos).prefix(answerOnlyDemos).map { $0.answerOnly() }
                let prompts = train.dropFirst(demos + answerOnlyDemos).filter { levels.contains($0.level) }
                try TaskRow.writeJSONL(Array(worked) + answerOnly, to: dir.appendingPathComponent("demos.jsonl"))
                try TaskRow.writeJSONL(prompts, to: dir.appendingPathComponent("prompts.jsonl"), withCompletions: false)
                print("wrote \(worked.count) worked and \(answerOnly.count) answer-only demonstrations and \(prompts.count) prompts without solutions (\(promptLevels))")
            }
        }

        /// "add5,sub5" → [(add5, 1), (sub5, 1)].
        static func mix(_ text: String) throws -> [(ArithmeticTask.Level, Double)] {
            try text.split(separator: ",").map { name in
                guard let level = ArithmeticTask.Level(name: String(name)) else {
                    throw ValidationError("--levels: '\(name)' is not a level (addN, subN or mulN, N = 1…12)")
                }
                return (level, 1)
            }
        }
    }
}
