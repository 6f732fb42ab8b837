import Foundation
import GroveConfig
import GroveRun

extension Recipe {
    /// Reads and checks a recipe file, applying `overrides` ("stages.0.sft.lr=3e-4") first.
    static func load(path: String, overrides: [String] = []) throws -> Recipe {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw RecipeError(file: path, line: 0, path: "", message: FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file")
        }
        var root = try RecipeValue.parse(text, file: path)
        for o in overrides {
            guard let eq = o.firstIndex(of: "=") else {
                throw RecipeError(file: path, line: 0, path: o, message: "an override is KEY.PATH=VALUE")
            }
            let key = String(o[..<eq]), value = String(o[o.index(after: eq)...])
            try root.set(path: key.split(separator: ".").map(String.init),
                         to: try RecipeValue.parse(value.isEmpty ? "''" : value, file: "--set \(key)").withLine(0),
                         file: path, fullPath: key)
        }
        return try Recipe(root, file: path, text: text)
    }
}
