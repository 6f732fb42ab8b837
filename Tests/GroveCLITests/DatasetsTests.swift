import Foundation
import XCTest
@testable import grove
@testable import GroveTasks

final class DatasetsTests: XCTestCase {
    /// `--levels` writes only the named levels, and the held-out rows never repeat a training prompt.
    func testGenerateWithLevels() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("grove-datasets-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Datasets.Generate.parse(["arithmetic", "--levels", "mul4,sub5", "--train-size", "60", "--eval-size", "20",
                                     "--out", dir.path]).run()
        func rows(_ name: String) throws -> [TaskRow] {
            try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8).split(separator: "\n")
                .map { try JSONDecoder().decode(TaskRow.self, from: Data($0.utf8)) }
        }
        let train = try rows("train.jsonl"), eval = try rows("eval.jsonl")
        XCTAssertEqual(train.count, 60)
        XCTAssertEqual(eval.count, 20)
        XCTAssertEqual(Set((train + eval).map(\.level)), ["mul4", "sub5"])
        XCTAssertTrue(Set(train.map(\.prompt)).isDisjoint(with: eval.map(\.prompt)))
        XCTAssertThrowsError(try Datasets.Generate.parse(["arithmetic", "--levels", "pow2"]).run())
        XCTAssertThrowsError(try Datasets.Generate.parse(["countdown", "--levels", "add2"]).run())
    }
}
