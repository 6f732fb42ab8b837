import Foundation
import XCTest

/// Where tests find their data: the repository (`repoRoot`), Grove's own fixtures (`Tests/Fixtures`),
/// the copies of the shared reference fixtures the suite reads (`Tests/Fixtures/shared`, byte-identical
/// to `<repo>/../shared/fixtures/public`) and the shared datasets, which only CI has (it clones the
/// repository with `shared/` beside it). Shared by every test target.
public enum Fixtures {
    public static let repoRoot: URL = {
        var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
            url.deleteLastPathComponent()
        }
        return url
    }()

    /// Small fixtures of our own, made with transformers (see Tests/Fixtures/README.md).
    public static let local = repoRoot.appendingPathComponent("Tests/Fixtures")

    /// The reference fixtures, copied from `../shared/fixtures/public` and listed with their sha256 in `SHA256SUMS`.
    public static let publicDir = local.appendingPathComponent("shared")
    public static let modelA = publicDir.appendingPathComponent("model_a_qwen2")
    /// DeepseekV2ForCausalLM (MLA with q_lora_rank, DeepSeekMoE with 1 shared and 8 routed experts).
    public static let modelF = publicDir.appendingPathComponent("model_f_deepseek_v2")

    /// The shared folder beside the repository (`<repo>/../shared`); absent from a fresh clone.
    public static let shared = repoRoot.deletingLastPathComponent().appendingPathComponent("shared")
    /// The originals of `publicDir`'s copies.
    public static let sharedPublicDir = shared.appendingPathComponent("fixtures/public")
    /// Shared datasets (`<repo>/../shared/datasets`), not copied: tests that read them `require` them.
    public static let sharedDatasets = shared.appendingPathComponent("datasets")

    /// `url` when it exists; otherwise skips the test, naming the missing path.
    public static func require(_ url: URL) throws -> URL {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw XCTSkip("\(url.path) not found (only CI clones the repository with shared/ beside it)")
        }
        return url
    }

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
