import Foundation
import XCTest
import GroveReport

/// The report as a browser draws it: headless Chromium (Debian's `chromium`) screenshots it, the
/// way `make report-screenshot` does. A PNG compresses flat colour to almost nothing, so a page of
/// charts and tables gives a file several times the size of a blank page's.
final class ScreenshotTests: XCTestCase {
    /// `chromium` on PATH, if installed.
    static let chromium: URL? = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        .map { URL(fileURLWithPath: String($0)).appendingPathComponent("chromium") }
        .first { FileManager.default.isExecutableFile(atPath: $0.path) }

    /// Screenshots `page` at the report's size; returns the PNG's size in bytes.
    func screenshot(_ page: URL, chromium: URL) throws -> Int {
        let png = page.deletingPathExtension().appendingPathExtension("png")
        let process = Process()
        process.executableURL = chromium
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--screenshot=\(png.path)", "--window-size=1200,3000", page.absoluteString]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "chromium failed on \(page.path)")
        let data = try Data(contentsOf: png)
        XCTAssertEqual(Array(data.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "not a PNG")
        return data.count
    }

    func testChromiumDrawsTheReport() throws {
        guard let chromium = ScreenshotTests.chromium else {
            throw XCTSkip("chromium is not on PATH (apt-get install -y chromium): the report's rendering is not checked")
        }
        let dir = try sampleRun()
        let report = try HTMLReport.write(runDirectory: dir)
        let blank = dir.appendingPathComponent("blank.html")
        try "<!DOCTYPE html><html><body></body></html>".write(to: blank, atomically: true, encoding: .utf8)
        let reportBytes = try screenshot(report, chromium: chromium), blankBytes = try screenshot(blank, chromium: chromium)
        XCTAssertGreaterThan(reportBytes, 40_000, "a report's screenshot holds charts and text")
        XCTAssertGreaterThan(reportBytes, 5 * blankBytes, "report \(reportBytes) bytes, blank page \(blankBytes)")
    }
}
