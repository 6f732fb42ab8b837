import Foundation
import XCTest
@testable import GroveStore

final class RunStoreTests: XCTestCase {
    func path() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("grove-store-\(UUID().uuidString)/run.sqlite")
    }

    func testMigrationsApplyOnceAndSetUserVersion() throws {
        let url = path()
        _ = try RunStore(path: url)
        let store = try RunStore(path: url)  // reopening applies nothing twice
        let names = try store.database.query("SELECT name FROM schema_migrations").compactMap { $0.text(0) }
        XCTAssertEqual(names, Migration.all.map(\.name))
        XCTAssertEqual(try store.database.query("PRAGMA user_version").first?.int(0), Int64(Migration.all.count))
        XCTAssertEqual(try store.database.query("PRAGMA journal_mode").first?.text(0), "wal")
    }

    /// A database written before runs could be `killed` upgrades in place: its rows and the
    /// references to them survive the rebuild of `runs`, and foreign keys are on again after.
    func testOlderDatabaseUpgradesKeepingItsRows() throws {
        let url = path()
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        do {
            let old = try SQLiteDatabase(path: url.path)
            try old.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            for m in Migration.all.prefix(3) {
                try old.execute(m.sql)
                try old.run("INSERT INTO schema_migrations VALUES (?, 'then')", [.text(m.name)])
            }
            try old.execute("""
                INSERT INTO runs (id, name, seed, grove_version, started_at, status) VALUES (1, 'old', 0, '0.1.0', 'then', 'running');
                INSERT INTO metrics VALUES (1, '0:sft', 1, 'train/loss', 2.5, 0.1);
                """)
        }
        let store = try RunStore(path: url)
        try store.markStaleRunsKilled()
        XCTAssertEqual(try store.runs().map(\.status), [.killed])
        XCTAssertEqual(try store.metric(run: 1, name: "train/loss").map(\.value), [2.5])
        XCTAssertTrue(try store.database.query("PRAGMA foreign_key_check").isEmpty)
        XCTAssertEqual(try store.database.query("PRAGMA foreign_keys").first?.int(0), 1)
        XCTAssertThrowsError(try store.database.run("INSERT INTO metrics VALUES (7, '0:sft', 1, 'x', 1, 0)"), "references are enforced")
    }

    func testNewerDatabaseIsRefused() throws {
        let url = path()
        let store = try RunStore(path: url)
        try store.database.run("INSERT INTO schema_migrations VALUES ('9999_future', 'x')")
        XCTAssertThrowsError(try RunStore(path: url)) { XCTAssertTrue("\($0)".contains("9999_future") && "\($0)".contains(url.path), "\($0)") }
    }

    func testRunLifecycleAndMetrics() throws {
        let store = try RunStore(path: path())
        let run = try store.beginRun(name: "t", recipePath: "r.yaml", recipeText: "seed: 1", seed: 1, groveVersion: "0.1.0")
        try store.beginStage(run: run, index: 0, label: "0:sft", kind: "sft")
        try store.log(run: run, stage: "0:sft", step: 1, metrics: [("train/loss", 2.5), ("train/grad_norm", .nan)], wallTime: 0.1)
        try store.log(run: run, stage: "0:sft", step: 2, metrics: [("train/loss", 2.0)], wallTime: 0.2)
        try store.log(run: run, stage: "0:sft", step: 2, metrics: [("train/loss", 1.9)], wallTime: 0.3)  // resumed: replaces
        try store.endStage(run: run, label: "0:sft")
        // A grpo stage and its control share the stage index; each is a row of its own, and the
        // grpo stage's rewards are stored with their weights.
        try store.beginStage(run: run, index: 1, label: "1:grpo", kind: "grpo")
        try store.recordRewards(run: run, stage: "1:grpo", rewards: [("arithmetic", "task", 1), ("length", "length", 0.1)])
        try store.beginStage(run: run, index: 1, label: "1:sft_control", kind: "sft_control")
        XCTAssertEqual(try store.database.query("SELECT label, kind FROM stages WHERE run_id = ? ORDER BY label", [.int(run)]).map { $0.text(1) ?? "" },
                       ["sft", "grpo", "sft_control"])
        XCTAssertEqual(try store.database.query("SELECT name, weight FROM stage_rewards WHERE run_id = ? ORDER BY name", [.int(run)]).map { $0.double(1) ?? 0 },
                       [1, 0.1])
        try store.finishRun(run, status: .finished)
        let series = try store.metric(run: run, name: "train/loss")
        XCTAssertEqual(series.map(\.step), [1, 2])
        XCTAssertEqual(series.map(\.value), [2.5, 1.9])
        XCTAssertTrue(try store.metric(run: run, name: "train/grad_norm")[0].value.isNaN)
        XCTAssertEqual(try store.metricNames(run: run), ["train/grad_norm", "train/loss"])
        XCTAssertEqual(try store.runs().map(\.status), [.finished])
    }

    func testTransactionRollsBackOnError() throws {
        let store = try RunStore(path: path())
        let run = try store.beginRun(name: "t", recipePath: nil, recipeText: nil, seed: 0, groveVersion: "0")
        struct Boom: Error {}
        XCTAssertThrowsError(try store.database.transaction {
            try store.log(run: run, stage: "s", step: 1, metrics: [("a", 1)], wallTime: 0)
            throw Boom()
        })
        XCTAssertTrue(try store.metric(run: run, name: "a").isEmpty)
    }

    func testCommittedStepsSurviveWithoutClose() throws {
        let url = path()
        var store: RunStore? = try RunStore(path: url)
        let run = try store!.beginRun(name: "t", recipePath: nil, recipeText: nil, seed: 0, groveVersion: "0")
        try store!.log(run: run, stage: "s", step: 1, metrics: [("a", 1)], wallTime: 0)
        let reader = try RunStore(path: url)  // a second connection sees the committed step at once
        XCTAssertEqual(try reader.metric(run: run, name: "a").map(\.value), [1])
        store = nil
    }

    func testCorruptFileNamesThePath() throws {
        let url = path()
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(repeating: 0x41, count: 4096).write(to: url)
        XCTAssertThrowsError(try RunStore(path: url)) { XCTAssertTrue("\($0)".contains(url.path), "\($0)") }
    }

    func testUnwritableLocationNamesThePath() {
        let url = URL(fileURLWithPath: "/proc/grove-cannot-write-here/run.sqlite")
        XCTAssertThrowsError(try RunStore(path: url)) { XCTAssertTrue("\($0)".contains(url.path), "\($0)") }
    }
}
