import Foundation

/// Where tests find their data: the repository (`repoRoot`), the shared reference fixtures
/// (`<repo>/../shared/fixtures/public`, CI clones the repository with `shared/` beside it) and
/// Grove's own fixtures (`Tests/Fixtures`). Shared by every test target.
public enum Fixtures {
    public static let repoRoot: URL = {
        var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
            url.deleteLastPathComponent()
        }
        return url
    }()

    public static let publicDir = repoRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures/public")
    public static let modelA = publicDir.appendingPathComponent("model_a_qwen2")
    /// Small fixtures of our own, made with transformers (see Tests/Fixtures/README.md).
    public static let local = repoRoot.appendingPathComponent("Tests/Fixtures")

    /// Shared datasets (`<repo>/../shared/datasets`).
    public static let sharedDatasets = repoRoot.deletingLastPathComponent().appendingPathComponent("shared/datasets")

    /// A JSON object file.
    public static func json(_ url: URL) throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any] else {
            throw CocoaError(.fileReadCorruptFile, userInfo: [NSFilePathErrorKey: url.path])
        }
        return object
    }

    /// A fresh empty folder under the system's temporary directory.
    public static func temporaryDirectory() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("grove-test-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Largest absolute difference between two equally long arrays.
public func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "maxAbsDiff: \(a.count) vs \(b.count)")
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}
