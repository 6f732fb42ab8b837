/// Errors loading or saving a tokenizer; each names the file and the key.
public enum TokenizerError: Error, CustomStringConvertible {
    case missingFile(path: String)
    case malformed(file: String, key: String, problem: String)
    case unsupported(file: String, key: String, value: String, supported: String)
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case .missingFile(let p): return "\(p): no such file (a tokenizer folder holds tokenizer.json)"
        case .malformed(let f, let k, let p): return "\(f): \(k.isEmpty ? "" : "key '\(k)': ")\(p)"
        case .unsupported(let f, let k, let v, let s): return "\(f): '\(k)' = \(v) is not supported (supported: \(s))"
        case .unwritable(let p, let r): return "\(p): cannot write: \(r)"
        }
    }
}
