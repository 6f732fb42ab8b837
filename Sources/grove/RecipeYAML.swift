import GroveConfig
import Yams

/// Recipes are YAML: the parser lives here, with the command line, so that the run layer
/// (GroveRun) and the rewards read recipe trees without depending on a YAML library.
extension RecipeValue {
    /// Parses YAML text; syntax errors carry the file and line.
    static func parse(_ text: String, file: String) throws -> RecipeValue {
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch let error as YamlError {
            throw RecipeError(file: file, line: RecipeValue.line(of: error), path: "", message: "not valid YAML: \(error)")
        }
        guard let node else { throw RecipeError(file: file, line: 1, path: "", message: "the recipe is empty") }
        return try RecipeValue(node, file: file)
    }

    init(_ node: Node, file: String) throws {
        let line = node.mark?.line ?? 0
        switch node {
        case .scalar(let s): self = .scalar(s.string, line: line)
        case .sequence(let seq): self = .sequence(try seq.map { try RecipeValue($0, file: file) }, line: line)
        case .mapping(let map):
            var entries: [(key: String, value: RecipeValue)] = []
            for (k, v) in map {
                guard case .scalar(let key) = k else {
                    throw RecipeError(file: file, line: k.mark?.line ?? line, path: "", message: "mapping keys must be plain words")
                }
                if entries.contains(where: { $0.key == key.string }) {
                    throw RecipeError(file: file, line: k.mark?.line ?? line, path: key.string, message: "key given twice")
                }
                entries.append((key.string, try RecipeValue(v, file: file)))
            }
            self = .mapping(entries, line: line)
        }
    }

    private static func line(of error: YamlError) -> Int {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        default: return 1
        }
    }

}
