/// Errors loading, checking or saving a model; each names the file and the key or tensor.
public enum ModelError: Error, CustomStringConvertible {
    case missingFile(path: String, hint: String)
    case badConfig(file: String, key: String, problem: String)
    case unsupported(file: String, key: String, value: String, supported: String)
    case missingTensor(file: String, tensor: String)
    case shapeMismatch(file: String, tensor: String, expected: [Int], found: [Int])
    case unexpectedTensor(file: String, tensor: String)
    case tokenOutOfRange(id: Int, vocabSize: Int)

    public var description: String {
        switch self {
        case .missingFile(let p, let hint): return "\(p): no such file or folder\(hint.isEmpty ? "" : " (\(hint))")"
        case .badConfig(let f, let k, let problem): return "\(f): key '\(k)': \(problem)"
        case .unsupported(let f, let k, let v, let s): return "\(f): '\(k)' = \(v) is not supported (supported: \(s))"
        case .missingTensor(let f, let t): return "\(f): tensor '\(t)' is missing from the checkpoint"
        case .shapeMismatch(let f, let t, let e, let found):
            return "\(f): tensor '\(t)' has shape \(found) but the configuration (config.json or GGUF metadata) implies \(e)"
        case .unexpectedTensor(let f, let t): return "\(f): tensor '\(t)' does not belong to this model (wrong architecture or config?)"
        case .tokenOutOfRange(let id, let v): return "token id \(id) is outside the vocabulary (0..<\(v))"
        }
    }
}
