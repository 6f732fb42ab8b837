import Foundation
import GroveConfig
import GroveRollout

/// A reward computed by a program in any language.
///
/// Protocol: Grove starts `command` (through `/bin/sh -c`) once per batch, writes one JSON
/// object per completion to its standard input — `{"prompt", "completion", "completion_ids",
/// "row"}` — and closes it. The program writes one line per completion to standard output:
/// a number, `null` (not applicable), or `{"reward": x, ...extra numeric columns}`, then exits 0.
/// A non-zero exit, a batch that exceeds `timeout`, a line that is not JSON or a wrong line
/// count is an error that quotes the program's stderr — or, when `fallback` is set, gives every
/// completion of the batch that value and a warning.
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
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin; process.standardOutput = stdout; process.standardError = stderr
        do { try process.run() } catch {
            throw RewardError(reward: name, message: "cannot start `\(command)`: \(error.localizedDescription)")
        }
        // Read both pipes on their own threads so a chatty program never blocks on a full pipe.
        let outputBox = DataBox(), errorsBox = DataBox(), payload = input
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { outputBox.data = stdout.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async(group: group) { errorsBox.data = stderr.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async {
            try? stdin.fileHandleForWriting.write(contentsOf: payload)
            try? stdin.fileHandleForWriting.close()
        }
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        if finished.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            kill(-process.processIdentifier, SIGKILL)
            kill(process.processIdentifier, SIGKILL)
            _ = group.wait(timeout: .now() + 2)
            throw RewardError(reward: name, message: "`\(command)` did not answer within \(timeout) s (killed)\(tail(errorsBox.data))")
        }
        group.wait()  // both pipes drained: the boxes are complete
        let output = outputBox.data, errors = errorsBox.data
        guard process.terminationStatus == 0 else {
            throw RewardError(reward: name, message: "`\(command)` exited with status \(process.terminationStatus)\(tail(errors))")
        }
        let lines = String(decoding: output, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.count == batch.count else {
            throw RewardError(reward: name, message: "`\(command)` printed \(lines.count) lines for \(batch.count) completions\(tail(errors))")
        }
        var values: [Double?] = [], extras: [String: [Double?]] = [:]
        for (i, line) in lines.enumerated() {
            guard let parsed = try? JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed]) else {
                throw RewardError(reward: name, message: "line \(i + 1) of `\(command)`'s output is not JSON: \(line.prefix(80))\(tail(errors))")
            }
            // JSON booleans parse as numbers on Linux: tell them apart by their text.
            let text = line.trimmingCharacters(in: .whitespaces)
            if text == "true" || text == "false" {
                throw RewardError(reward: name, message: "line \(i + 1) is a boolean, not a reward")
            }
            switch parsed {
            case let number as NSNumber: values.append(number.doubleValue)
            case is NSNull: values.append(nil)
            case let object as [String: Any]:
                values.append(ExternalProgramReward.number(object["reward"]))
                for (k, v) in object where k != "reward" {
                    extras[k, default: [Double?](repeating: nil, count: batch.count)][i] = ExternalProgramReward.number(v)
                }
            default:
                throw RewardError(reward: name, message: "line \(i + 1) should be a number, null or {\"reward\": x}, found \(line.prefix(80))")
            }
        }
        return RewardOutput(values: values, extras: extras)
    }

    static func number(_ value: Any?) -> Double? { (value as? NSNumber)?.doubleValue }

    /// The end of the program's stderr, for error messages.
    func tail(_ errors: Data) -> String {
        let text = String(decoding: errors, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "" : "; its stderr ends: \(text.suffix(600))"
    }
}

/// Bytes read on another thread, handed over after `DispatchGroup.wait`.
final class DataBox: @unchecked Sendable {
    var data = Data()
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
