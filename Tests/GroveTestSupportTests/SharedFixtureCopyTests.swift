import Foundation
import GroveTestSupport
import XCTest

/// The copies of the shared reference fixtures (Tests/Fixtures/shared): each file is listed in
/// SHA256SUMS and matches its sum there, and, when `../shared` is beside the repository, each is
/// byte-identical to its original in `../shared/fixtures/public`.
final class SharedFixtureCopyTests: XCTestCase {
    /// The paths SHA256SUMS lists (lines `<64 hex digits>  <path>`), relative to `Fixtures.publicDir`.
    func listedPaths() throws -> [String] {
        let sums = try String(contentsOf: Fixtures.publicDir.appendingPathComponent("SHA256SUMS"), encoding: .utf8)
        return sums.split(separator: "\n").map { String($0.dropFirst(66)) }
    }

    func testEveryCopyMatchesItsSHA256() throws {
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = ["sha256sum", "--check", "--strict", "--quiet", "SHA256SUMS"]
        check.currentDirectoryURL = Fixtures.publicDir
        let output = Pipe()
        check.standardOutput = output
        check.standardError = output
        try check.run()
        let report = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        check.waitUntilExit()
        XCTAssertEqual(check.terminationStatus, 0, report)

        let dir = Fixtures.publicDir.path
        let files = try FileManager.default.subpathsOfDirectory(atPath: dir).filter { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: dir + "/" + path, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
        XCTAssertEqual(Set(files).subtracting(try listedPaths() + ["SHA256SUMS"]), [], "files SHA256SUMS does not list")
    }

    func testCopiesEqualTheSharedOriginals() throws {
        let originals = try Fixtures.require(Fixtures.sharedPublicDir)
        for path in try listedPaths() {
            let copy = try Data(contentsOf: Fixtures.publicDir.appendingPathComponent(path))
            XCTAssertEqual(copy, try Data(contentsOf: originals.appendingPathComponent(path)), "\(path) differs from ../shared's; see Tests/Fixtures/README.md")
        }
    }
}
