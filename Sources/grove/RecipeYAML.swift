import GroveConfig
import Yams

/// Recipes are YAML: the parser lives here, with the command line, so that the run layer
/// (GroveRun) and the rewards read recipe trees without depending on a YAML library.
extension RecipeValue {
    /// Bounds on a recipe's shape. Yams composes, and we convert, one stack frame per level, and
    /// an alias repeats its anchor's whole tree: unbounded, deep nesting overflows the stack and
    /// "billion laughs" aliases expand ten lines into 10^9 values. Real recipes nest a few levels.
    static let maxDepth = 64
    static let maxValues = 100_000

    /// Parses YAML text; syntax errors carry the file and line.
    static func parse(_ text: String, file: String) throws -> RecipeValue {
        try checkNesting(text, file: file)
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch let error as YamlError {
            throw RecipeError(file: file, line: RecipeValue.line(of: error), path: "", message: "not valid YAML: \(error)")
        }
        guard let node else { throw RecipeError(file: file, line: 1, path: "", message: "the recipe is empty") }
        var budget = maxValues
        return try RecipeValue(node, file: file, depth: 1, budget: &budget)
    }

    /// Rejects text nested deeper than `maxDepth` before Yams recurses into it. Counts the open
    /// block collections (indentation levels, and one per indicator of a compact `- - x` or `? ? x`)
    /// plus the open flow brackets, skipping quoted text, comments and block scalars (`|`, `>`).
    static func checkNesting(_ text: String, file: String) throws {
        let space = UInt8(ascii: " "), hash = UInt8(ascii: "#"), backslash = UInt8(ascii: "\\")
        let indicators = Set("-?:".utf8)
        let quoteStarts = Set(" :-[{,".utf8)  // a quote opens a scalar only after these, not inside "it's"
        var indents: [Int] = []  // columns of the open block collections
        var flow = 0, quote: UInt8? = nil, blockScalarIndent: Int? = nil
        // Bytes, not Characters: a String sees "\r\n" as one Character and would not split there.
        for (n, line) in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            var chars = Array(line)
            if chars.last == UInt8(ascii: "\r") { chars.removeLast() }
            var col = 0
            while col < chars.count, chars[col] == space { col += 1 }
            if col == chars.count { continue }  // blank
            if let indent = blockScalarIndent {
                if col > indent { continue }
                blockScalarIndent = nil
            }
            if flow == 0 && quote == nil {
                if chars[col] == hash { continue }
                while let last = indents.last, last > col { indents.removeLast() }
                if indents.last != col { indents.append(col) }
                while col + 1 < chars.count, indicators.contains(chars[col]), chars[col + 1] == space {
                    col += 2
                    while col < chars.count, chars[col] == space { col += 1 }
                    indents.append(col)
                }
            }
            var last = UInt8(ascii: " ")  // the previous byte outside quotes
            var i = col
            scan: while i < chars.count {
                let c = chars[i]
                if let q = quote {
                    if c == q { quote = nil } else if c == backslash && q == UInt8(ascii: "\"") { i += 1 }
                    i += 1
                    continue
                }
                switch c {
                case UInt8(ascii: "'") where quoteStarts.contains(last), UInt8(ascii: "\"") where quoteStarts.contains(last): quote = c
                case hash where last == space: break scan
                case UInt8(ascii: "["), UInt8(ascii: "{"): flow += 1
                case UInt8(ascii: "]"), UInt8(ascii: "}"): flow = max(0, flow - 1)
                default: break
                }
                if indents.count + flow > maxDepth {
                    throw RecipeError(file: file, line: n + 1, path: "", message: "nested deeper than \(maxDepth) levels")
                }
                last = c
                i += 1
            }
            // `key: |` or `- >-`: the more-indented lines after it are text.
            let content = String(decoding: chars[col..<i], as: UTF8.self).trimmingCharacters(in: .whitespaces)
            if flow == 0, quote == nil, let indicator = content.split(separator: " ").last, indicator.first == "|" || indicator.first == ">" {
                blockScalarIndent = chars.prefix { $0 == space }.count
            }
        }
    }

    /// The tree of `node`, counting values against `budget` (aliases included) and levels against `maxDepth`.
    init(_ node: Node, file: String, depth: Int, budget: inout Int) throws {
        let line = node.mark?.line ?? 0
        budget -= 1
        guard budget >= 0 else {
            throw RecipeError(file: file, line: line, path: "", message: "the recipe expands to more than \(RecipeValue.maxValues) values (aliases repeating aliases?)")
        }
        guard depth <= RecipeValue.maxDepth else {
            throw RecipeError(file: file, line: line, path: "", message: "nested deeper than \(RecipeValue.maxDepth) levels (aliases inside aliases?)")
        }
        switch node {
        case .scalar(let s): self = .scalar(s.string, line: line)
        case .sequence(let seq):
            var items: [RecipeValue] = []
            for item in seq { items.append(try RecipeValue(item, file: file, depth: depth + 1, budget: &budget)) }
            self = .sequence(items, line: line)
        case .mapping(let map):
            var entries: [(key: String, value: RecipeValue)] = []
            for (k, v) in map {
                guard case .scalar(let key) = k else {
                    throw RecipeError(file: file, line: k.mark?.line ?? line, path: "", message: "mapping keys must be plain words")
                }
                if entries.contains(where: { $0.key == key.string }) {
                    throw RecipeError(file: file, line: k.mark?.line ?? line, path: key.string, message: "key given twice")
                }
                entries.append((key.string, try RecipeValue(v, file: file, depth: depth + 1, budget: &budget)))
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
