import Foundation
import XCTest

/// Grove's default worker count follows the CPU affinity, so a process pinned to one core (by
/// `taskset`, a cpuset, or mpirun binding each rank to a core) runs one worker, not one per core
/// of the machine.
final class AffinityTests: XCTestCase {
    func testDefaultThreadsFollowCPUAffinity() throws {
        guard ProcessInfo.processInfo.activeProcessorCount > 1 else { throw XCTSkip("one core: pinning changes nothing") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset") else { throw XCTSkip("no taskset (util-linux)") }
        let bundle = Bundle(for: AffinityTests.self).bundleURL
        let grove = [bundle, bundle.deletingLastPathComponent()].map { $0.appendingPathComponent("grove").path }
            .first(where: FileManager.default.isExecutableFile(atPath:))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
        process.arguments = ["-c", "0", try XCTUnwrap(grove), "doctor", "--json", "--size", "32", "--threads", "1"]
        var env = ProcessInfo.processInfo.environment
        env["GROVE_NUM_THREADS"] = nil
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, output)
        XCTAssertTrue(output.contains("\"blas_threads\": 1,"), output)
    }
}
