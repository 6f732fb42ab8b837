import Foundation
import GroveModel
import GroveTokenizer

extension Tokenizer {
    /// A model's tokenizer: a folder's tokenizer.json (and tokenizer_config.json), or the one a
    /// `.gguf` file's metadata describes. GroveTokenizer builds tokenizers from files only, so the
    /// GGUF's tokenizer.json is written to a temporary folder and read back from there.
    public static func load(model url: URL) throws -> Tokenizer {
        guard GGUFFile.isGGUF(url) else { return try Tokenizer(directory: url) }
        let (json, config) = try GGUFTokenizer.json(try GGUFFile(url))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("grove-gguf-tokenizer-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (name, object) in [("tokenizer.json", json), ("tokenizer_config.json", config)] {
            try JSONSerialization.data(withJSONObject: object).write(to: dir.appendingPathComponent(name))
        }
        do {
            return try Tokenizer(directory: dir)
        } catch {
            // Name the GGUF, not the temporary file.
            throw ModelError.badConfig(file: url.path, key: "tokenizer.ggml",
                                       problem: "\(error)".replacingOccurrences(of: dir.appendingPathComponent("tokenizer.json").path + ": ", with: ""))
        }
    }
}
