import Foundation

/// Errors reading datasets: each names the file and, where there is one, the line.
public enum DataError: Error, CustomStringConvertible {
    case unreadable(file: String, reason: String)
    case malformedLine(file: String, line: Int, reason: String)
    case missingField(file: String, line: Int, field: String, available: [String])
    case wrongFieldType(file: String, line: Int, field: String, expected: String)
    /// A chat with no final assistant turn where a completion is required (SFT).
    case noReply(file: String, line: Int, field: String, lastRole: String)
    case empty(file: String)
    /// The tokenizer's chat template failed on this row (a raise_exception, say).
    case chatTemplate(file: String, line: Int, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let f, let r): return "\(f): cannot read: \(r)"
        case .malformedLine(let f, let l, let r): return "\(f):\(l): not a JSON object: \(r)"
        case .missingField(let f, let l, let field, let available):
            return "\(f):\(l): no field '\(field)' (the row has: \(available.sorted().joined(separator: ", "))); map fields in the recipe's data section"
        case .wrongFieldType(let f, let l, let field, let expected): return "\(f):\(l): field '\(field)' should be \(expected)"
        case .noReply(let f, let l, let field, let role):
            return "\(f):\(l): the chat in '\(field)' ends with a \(role) turn, not the assistant's reply to train on; prompt-only rows are for GRPO prompts"
        case .empty(let f): return "\(f): holds no rows"
        case .chatTemplate(let f, let l, let r): return "\(f):\(l): rendering the chat: \(r)"
        }
    }
}

/// A JSON-lines file read by random access: one pass records where each line starts,
/// then rows are parsed on demand, so a file larger than memory can be shuffled and streamed.
public final class JSONLFile {
    public let url: URL
    private let handle: FileHandle
    private var starts: [UInt64] = []  // byte offset of each non-blank line
    private var lengths: [Int] = []
    private var lineNumbers: [Int] = []

    /// Number of rows (non-blank lines).
    public var count: Int { starts.count }

    public init(url: URL) throws {
        self.url = url
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw DataError.unreadable(file: url.path, reason: FileManager.default.fileExists(atPath: url.path) ? "permission denied" : "no such file")
        }
        self.handle = handle
        try indexLines()
        if starts.isEmpty { throw DataError.empty(file: url.path) }
    }

    deinit { try? handle.close() }

    /// Scans the file in 1 MiB chunks, recording the offset and length of each line.
    private func indexLines() throws {
        var offset: UInt64 = 0, lineStart: UInt64 = 0, line = 1, blank = true
        while true {
            let chunk: Data
            do { chunk = try handle.read(upToCount: 1 << 20) ?? Data() } catch {
                throw DataError.unreadable(file: url.path, reason: "\(error)")
            }
            if chunk.isEmpty { break }
            chunk.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                for (i, byte) in raw.enumerated() {
                    let position = offset + UInt64(i)
                    if byte == 0x0A {
                        if !blank { starts.append(lineStart); lengths.append(Int(position - lineStart)); lineNumbers.append(line) }
                        line += 1; lineStart = position + 1; blank = true
                    } else if byte != 0x20 && byte != 0x09 && byte != 0x0D {
                        blank = false
                    }
                }
            }
            offset += UInt64(chunk.count)
        }
        if !blank { starts.append(lineStart); lengths.append(Int(offset - lineStart)); lineNumbers.append(line) }
    }

    /// The 1-based line number of row `i` in the file.
    public func lineNumber(of i: Int) -> Int { lineNumbers[i] }

    /// Row `i` as a JSON object.
    public func row(_ i: Int) throws -> [String: Any] {
        let data: Data
        do {
            try handle.seek(toOffset: starts[i])
            data = try handle.read(upToCount: lengths[i]) ?? Data()
        } catch { throw DataError.unreadable(file: url.path, reason: "\(error)") }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw DataError.malformedLine(file: url.path, line: lineNumbers[i], reason: "invalid JSON")
        }
        guard let dict = object as? [String: Any] else {
            throw DataError.malformedLine(file: url.path, line: lineNumbers[i], reason: "a JSON value that is not an object")
        }
        return dict
    }
}
