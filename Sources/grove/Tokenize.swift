import ArgumentParser
import Foundation
import GroveModel
import GroveRun
import GroveTokenizer

/// `grove tokenize --tokenizer DIR TEXT`: token ids as a JSON array.
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Encode text to token ids (a JSON array).")

    @Option(help: "Folder holding tokenizer.json (and tokenizer_config.json), or a .gguf file.")
    var tokenizer: String

    @Flag(help: "Apply the tokenizer's post-processor (a BOS token where the model uses one).")
    var addSpecialTokens = false

    @Argument(help: "The text to encode.")
    var text: String

    func run() throws {
        let tok = try Tokenizer.load(model: URL(fileURLWithPath: tokenizer))
        let ids = tok.encode(text, addSpecialTokens: addSpecialTokens)
        print("[" + ids.map(String.init).joined(separator: ", ") + "]")
    }
}

/// `grove detokenize --tokenizer DIR IDS`: the text of a list of ids.
struct Detokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Decode token ids (JSON array or comma-separated) to text.")

    @Option(help: "Folder holding tokenizer.json, or a .gguf file.")
    var tokenizer: String

    @Flag(help: "Leave special tokens out of the text.")
    var skipSpecialTokens = false

    @Argument(help: "Token ids, as a JSON array or comma-separated.")
    var ids: String

    func run() throws {
        let tok = try Tokenizer.load(model: URL(fileURLWithPath: tokenizer))
        let parsed = try parseIds(ids, vocabSize: tok.vocabSize)
        print(tok.decode(parsed.map(Int.init), skipSpecialTokens: skipSpecialTokens))
    }
}

/// Parses "1,2,3" or "[1, 2, 3]" into ids, each checked against the vocabulary.
func parseIds(_ text: String, vocabSize: Int) throws -> [Int32] {
    let body = text.trimmingCharacters(in: CharacterSet(charactersIn: "[] \n"))
    if body.isEmpty { return [] }
    return try body.split(separator: ",").map { part in
        let s = part.trimmingCharacters(in: .whitespaces)
        guard let id = Int32(s) else { throw ValidationError("'\(s)' is not a token id") }
        guard id >= 0 && Int(id) < vocabSize else { throw ModelError.tokenOutOfRange(id: Int(id), vocabSize: vocabSize) }
        return id
    }
}
