import Foundation

/// A recipe document (YAML, or `--set` overrides) as a tree that remembers where each value came from, so that every
/// recipe error can name the file, the line and the key path (`stages.0.lr`).
public indirect enum RecipeValue {
    case scalar(String, line: Int)
    case mapping([(key: String, value: RecipeValue)], line: Int)
    case sequence([RecipeValue], line: Int)

    public var line: Int {
        switch self {
        case .scalar(_, let l), .mapping(_, let l), .sequence(_, let l): return l
        }
    }

    /// The same value reported at `line` (overrides come from the command line, not the file).
    public func withLine(_ line: Int) -> RecipeValue {
        switch self {
        case .scalar(let s, _): return .scalar(s, line: line)
        case .mapping(let e, _): return .mapping(e.map { ($0.key, $0.value.withLine(line)) }, line: line)
        case .sequence(let items, _): return .sequence(items.map { $0.withLine(line) }, line: line)
        }
    }

    /// Sets `path` (dot-separated keys and sequence indices) to a YAML-parsed `value`,
    /// creating mappings along the way: the `--set stages.0.lr=3e-4` override.
    public mutating func set(path: [String], to value: RecipeValue, file: String, fullPath: String) throws {
        guard let head = path.first else { self = value; return }
        let rest = Array(path.dropFirst())
        switch self {
        case .mapping(var entries, let line):
            if let i = entries.firstIndex(where: { $0.key == head }) {
                try entries[i].value.set(path: rest, to: value, file: file, fullPath: fullPath)
            } else {
                var fresh = RecipeValue.mapping([], line: line)
                try fresh.set(path: rest, to: value, file: file, fullPath: fullPath)
                entries.append((head, fresh))
            }
            self = .mapping(entries, line: line)
        case .sequence(var items, let line):
            guard let i = Int(head), items.indices.contains(i) else {
                throw RecipeError(file: file, line: line, path: fullPath, message: "'\(head)' is not an index of this list (0..<\(items.count))")
            }
            try items[i].set(path: rest, to: value, file: file, fullPath: fullPath)
            self = .sequence(items, line: line)
        case .scalar(_, let line):
            throw RecipeError(file: file, line: line, path: fullPath, message: "cannot set a key inside a plain value")
        }
    }
}

/// A recipe problem, located: `Recipes/x.yaml:12: stages.0.lr: expected a number, found 'fast'`.
public struct RecipeError: Error, CustomStringConvertible {
    public let file: String
    public let line: Int
    public let path: String
    public let message: String

    public init(file: String, line: Int, path: String, message: String) {
        self.file = file; self.line = line; self.path = path; self.message = message
    }

    /// `file:line: key: message`; a value from the command line (line 0) is named as the `--set` key it came from.
    public var description: String {
        line > 0 ? "\(file):\(line): \(path.isEmpty ? "" : path + ": ")\(message)"
                 : "\(file): \(path.isEmpty ? "" : "--set " + path + ": ")\(message)"
    }
}

/// Reads typed values out of a `RecipeValue` tree, checking every key against the
/// allowed set (suggesting the closest one for a typo) and every type and range.
public struct RecipeReader {
    public let file: String

    public init(file: String) { self.file = file }

    public func error(_ value: RecipeValue, _ path: String, _ message: String) -> RecipeError {
        RecipeError(file: file, line: value.line, path: path, message: message)
    }

    /// The entries of a mapping whose keys must all be in `allowed`.
    public func mapping(_ value: RecipeValue, _ path: String, allowed: [String]) throws -> Fields {
        guard case .mapping(let entries, _) = value else { throw error(value, path, "expected a mapping of keys") }
        for (key, v) in entries where !allowed.contains(key) {
            let hint = RecipeReader.trlNames[key].flatMap { names in names.first(where: allowed.contains) }
                .map { " (did you mean '\($0)'? TRL's '\(key)' is Grove's '\($0)')" }
                ?? closest(to: key, in: allowed).map { " (did you mean '\($0)'?)" } ?? ""
            throw RecipeError(file: file, line: v.line, path: join(path, key),
                              message: "unknown key\(hint); valid keys: \(allowed.joined(separator: ", "))")
        }
        return Fields(reader: self, path: path, entries: entries, line: value.line)
    }

    public func sequence(_ value: RecipeValue, _ path: String) throws -> [RecipeValue] {
        guard case .sequence(let items, _) = value else { throw error(value, path, "expected a list") }
        return items
    }

    public func string(_ value: RecipeValue, _ path: String) throws -> String {
        guard case .scalar(let s, _) = value else { throw error(value, path, "expected a plain value") }
        return s
    }

    public func int(_ value: RecipeValue, _ path: String, min lo: Int? = nil) throws -> Int {
        let s = try string(value, path)
        guard let v = Int(s.replacingOccurrences(of: "_", with: "")) else { throw error(value, path, "expected a whole number, found '\(s)'") }
        if let lo, v < lo { throw error(value, path, "must be at least \(lo), found \(v)") }
        return v
    }

    public func double(_ value: RecipeValue, _ path: String, range: ClosedRange<Double>? = nil) throws -> Double {
        let s = try string(value, path)
        guard let v = Double(s), v.isFinite else { throw error(value, path, "expected a number, found '\(s)'") }
        if let range, !range.contains(v) { throw error(value, path, "must be within \(range.lowerBound)…\(range.upperBound), found \(s)") }
        return v
    }

    public func bool(_ value: RecipeValue, _ path: String) throws -> Bool {
        switch try string(value, path).lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        case let s: throw error(value, path, "expected true or false, found '\(s)'")
        }
    }

    /// A path that must exist (a file, or a folder when `directory`), read from the current directory when relative.
    public func existingPath(_ value: RecipeValue, _ path: String, directory: Bool) throws -> URL {
        let p = try string(value, path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
            throw error(value, path, "'\(p)' does not exist (relative paths are read from \(FileManager.default.currentDirectoryPath))")
        }
        if isDir.boolValue != directory { throw error(value, path, "'\(p)' should be a \(directory ? "folder" : "file")") }
        return URL(fileURLWithPath: p)
    }

    /// One of an enum's raw values.
    public func choice<E: RawRepresentable & CaseIterable>(_ value: RecipeValue, _ path: String, as: E.Type) throws -> E where E.RawValue == String {
        let s = try string(value, path)
        if let e = E(rawValue: s) { return e }
        let options = E.allCases.map(\.rawValue)
        let hint = closest(to: s, in: options).map { " (did you mean '\($0)'?)" } ?? ""
        throw error(value, path, "unknown value '\(s)'\(hint); one of: \(options.joined(separator: ", "))")
    }

    /// TRL's names for settings Grove names otherwise, with Grove's keys (the first one valid
    /// in the mapping at hand is suggested: a batch is sequences in sft, prompts in grpo).
    static let trlNames: [String: [String]] = [
        "learning_rate": ["lr"], "num_generations": ["group_size"], "max_completion_length": ["max_new_tokens"],
        "per_device_train_batch_size": ["batch_size", "prompts_per_step"], "max_steps": ["steps"],
        "num_iterations": ["iterations"], "loss_type": ["loss"], "lr_scheduler_type": ["schedule"],
        "adam_beta1": ["beta1"], "adam_beta2": ["beta2"], "max_length": ["max_new_tokens"], "reward_weights": ["rewards"],
    ]

    public func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }

    /// The allowed word nearest to `word` by edit distance, if it is near enough to be a typo
    /// (or one word starts with the other: `lrate` → `lr`).
    public func closest(to word: String, in options: [String]) -> String? {
        let scored = options.map { ($0, editDistance(word, $0)) }.min { $0.1 < $1.1 }
        guard let (best, d) = scored else { return nil }
        if d <= max(2, word.count / 3) { return best }
        return options.first { word.hasPrefix($0) || $0.hasPrefix(word) }
    }
}

/// The entries of one mapping, read key by key.
public struct Fields {
    public let reader: RecipeReader
    public let path: String
    public let entries: [(key: String, value: RecipeValue)]
    public let line: Int

    public init(reader: RecipeReader, path: String, entries: [(key: String, value: RecipeValue)], line: Int) {
        self.reader = reader; self.path = path; self.entries = entries; self.line = line
    }

    public subscript(_ key: String) -> RecipeValue? { entries.first { $0.key == key }?.value }
    public func has(_ key: String) -> Bool { self[key] != nil }
    public func path(_ key: String) -> String { reader.join(path, key) }

    /// A required key's value, or an error naming the key at the mapping's line.
    public func required(_ key: String) throws -> RecipeValue {
        guard let v = self[key] else {
            throw RecipeError(file: reader.file, line: line, path: path(key), message: "missing required key")
        }
        return v
    }

    public func int(_ key: String, default d: Int, min lo: Int? = nil) throws -> Int {
        try self[key].map { try reader.int($0, path(key), min: lo) } ?? d
    }
    public func double(_ key: String, default d: Double, range: ClosedRange<Double>? = nil) throws -> Double {
        try self[key].map { try reader.double($0, path(key), range: range) } ?? d
    }
    public func string(_ key: String) throws -> String? { try self[key].map { try reader.string($0, path(key)) } }
    public func bool(_ key: String, default d: Bool) throws -> Bool { try self[key].map { try reader.bool($0, path(key)) } ?? d }
}

/// Levenshtein distance, for "did you mean" hints.
public func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var row = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var previous = row[0]
        row[0] = i
        for j in 1...max(b.count, 1) where !b.isEmpty {
            let current = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
            previous = current
        }
    }
    return a.isEmpty ? b.count : row[b.count]
}
