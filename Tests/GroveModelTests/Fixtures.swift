import Foundation
import XCTest

/// Paths to the shared reference fixtures (`<repo>/../shared/fixtures/public`).
enum Fixtures {
    static let repoRoot: URL = {
        var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
            url.deleteLastPathComponent()
        }
        return url
    }()

    static let publicDir = repoRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures/public")
    static let modelA = publicDir.appendingPathComponent("model_a_qwen2")
    /// Small fixtures of our own, made with transformers (see Tests/Fixtures/README.md).
    static let local = repoRoot.appendingPathComponent("Tests/Fixtures")

    static func json(_ url: URL) throws -> [String: Any] {
        let data = try Data(contentsOf: url)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func temporaryDirectory() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("grove-test-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Largest absolute difference between two equally long arrays.
func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "maxAbsDiff: \(a.count) vs \(b.count)")
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}
