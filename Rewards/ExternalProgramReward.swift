import Foundation
import GroveConfig
import GroveRollout

/// A reward computed by a program in any language.
///
/// Protocol: Grove starts `command` (through `/bin/sh -c`) once per batch, writes one JSON
/// object per completion to its standard input — `{"prompt", "completion", "completion_ids",
/// "row"}` — and closes it. The program writes one line per completion to standard output:
/// a number, `null` (not applicable), or `{"reward": x, ...extra numeric columns}`, then exits 0.
/// A non-zero exit, a batch that exceeds `timeout`, input left unread, a line that is not JSON,
/// a reward that is not a number or null or is beyond ±1e15, or a wrong line count is an error
/// that quotes the program's stderr — or, when `fallback` is set, gives every completion of the
/// batch that value and a warning. The program and every process it starts end with the batch
/// (see `ProgramRun`).
public struct ExternalProgramReward: Reward {
    public let name: String
    public let command: String
    public let timeout: TimeInterval
    public let fallback: Double?
    /// Called with the error text when a fallback is used.
    public var onWarning: ((String) -> Void)?

    public init(name: String, command: String, timeout: TimeInterval = 60, fallback: Double? = nil) {
        self.name = name; self.command = command; self.timeout = timeout; self.fallback = fallback
    }

    public func score(_ batch: [RewardInput]) throws -> RewardOutput {
        do {
            return try run(batch)
        } catch let error as RewardError {
            guard let fallback else { throw error }
            onWarning?("\(error); using the fallback value \(fallback) for \(batch.count) completions")
            return RewardOutput(values: batch.map { _ in fallback })
        }
    }

    /// Kills every reward program running now, with its children: for a signal handler that is about to exit
    /// (Grove's exit kills them anyway, a moment later).
    public static func killAll() { ProgramRun.killAll() }

    func run(_ batch: [RewardInput]) throws -> RewardOutput {
        var input = Data()
        for item in batch {
            let object: [String: Any] = ["prompt": item.prompt, "completion": item.completion,
                                         "completion_ids": item.completionIds.map(Int.init), "row": item.row]
            guard JSONSerialization.isValidJSONObject(object) else {
                throw RewardError(reward: name, message: "a dataset row cannot be sent as JSON")
            }
            input.append(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
            input.append(0x0A)
        }
        let program: ProgramRun
        do { program = try ProgramRun.run(command, input: input, timeout: timeout) } catch let error as ProgramRunError {
            throw RewardError(reward: name, message: error.message)
        }
        let output = program.output, errors = program.errors
        if program.timedOut {
            throw RewardError(reward: name, message: "`\(command)` did not answer within \(timeout) s (killed)\(tail(errors))")
        }
        if let failure = program.failure {
            throw RewardError(reward: name, message: "`\(command)` \(failure)\(tail(errors))")
        }
        if program.stoppedReading {
            throw RewardError(reward: name, message: "`\(command)` stopped reading its input before the last of \(batch.count) completions\(tail(errors))")
        }
        let lines = String(decoding: output, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.count == batch.count else {
            throw RewardError(reward: name, message: "`\(command)` printed \(lines.count) lines for \(batch.count) completions\(tail(errors))")
        }
        var values: [Double?] = [], extras: [String: [Double?]] = [:]
        for (i, line) in lines.enumerated() {
            /// What is wrong with this line, naming it and the program.
            func invalid(_ problem: String) -> RewardError {
                RewardError(reward: name, message: "line \(i + 1) of `\(command)`'s output \(problem): \(line.prefix(80))\(tail(errors))")
            }
            guard let parsed = try? JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed]) else {
                throw invalid("is not JSON")
            }
            let reward: Any
            if let object = parsed as? [String: Any] {
                guard let value = object["reward"] else { throw invalid("has no \"reward\"") }
                reward = value
                for (k, v) in object where k != "reward" {
                    extras[k, default: [Double?](repeating: nil, count: batch.count)][i] = ExternalProgramReward.number(v)
                }
            } else {
                reward = parsed
            }
            if reward is NSNull {
                values.append(nil)
            } else if let value = ExternalProgramReward.number(reward) {
                if let problem = RewardOutput.problem(with: value) { throw invalid("holds a reward that is \(problem)") }
                values.append(value)
            } else {
                throw invalid("holds a reward that is not a number or null (a number, null or {\"reward\": x} per line)")
            }
        }
        return RewardOutput(values: values, extras: extras)
    }

    /// A JSON number as a Double; nil for anything else, booleans included (they parse as NSNumbers of type "c").
    static func number(_ value: Any?) -> Double? {
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c" else { return nil }
        return number.doubleValue
    }

    /// The end of the program's stderr, for error messages.
    func tail(_ errors: Data) -> String {
        let text = String(decoding: errors, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "" : "; its stderr ends: \(text.suffix(600))"
    }
}

extension ExternalProgramReward: RecipeReward {
    public static let recipeKey = "external"
    public static let recipeFields = ["name", "command", "timeout", "fallback"]

    /// `- external: {command: "python3 my_reward.py", timeout: 60, fallback: 0}`.
    public static func read(_ f: Fields) throws -> (RewardContext) throws -> Reward {
        var reward = ExternalProgramReward(name: try f.string("name") ?? "external",
                                           command: try f.reader.string(try f.required("command"), f.path("command")),
                                           timeout: try f.double("timeout", default: 60, range: 0.1...86_400),
                                           fallback: try f["fallback"].map { try f.reader.double($0, f.path("fallback")) })
        return { context in
            reward.onWarning = context.warn
            return reward
        }
    }
}
