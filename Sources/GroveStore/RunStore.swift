import Foundation

/// A run's lifecycle state, as stored in `runs.status`.
public enum RunStatus: String {
    case running, finished, failed, interrupted
    /// Found `running` by a later run while no process held the output folder: the process died
    /// without a word (SIGKILL, power loss).
    case killed
}

/// One row of `runs`.
public struct RunRecord {
    public let id: Int64
    public let name: String
    public let seed: Int64
    public let status: RunStatus
    public let startedAt: String
    public let endedAt: String?
    public let error: String?
}

/// The run database (`output_dir/run.sqlite`): runs, stages and step metrics, schema
/// versioned by named migrations. Writes of one step share one transaction, so a killed
/// process loses at most the step in flight. Use one `RunStore` from one thread.
///
/// ```swift
/// let store = try RunStore(path: URL(fileURLWithPath: "runs/quickstart/run.sqlite"))
/// let run = try store.beginRun(name: "quickstart", recipePath: path, recipeText: text, seed: 0, groveVersion: "0.1.0")
/// try store.log(run: run, stage: "0:sft", step: 1, metrics: [("train/loss", 2.3)], wallTime: 0.5)
/// try store.finishRun(run, status: .finished)
/// ```
public final class RunStore {
    public let database: SQLiteDatabase

    public convenience init(path: URL) throws {
        try self.init(sqlitePath: path.path)
    }

    /// A store that lives in memory and vanishes with the process (a data-parallel run's other
    /// ranks: they run the same code as rank 0, which alone writes run.sqlite).
    public static func inMemory() throws -> RunStore { try RunStore(sqlitePath: ":memory:") }

    init(sqlitePath: String) throws {
        database = try SQLiteDatabase(path: sqlitePath)
        try migrate()
    }

    /// Applies the migrations this database lacks; refuses a database from a newer Grove.
    func migrate() throws {
        try database.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        let applied = Set(try database.query("SELECT name FROM schema_migrations").compactMap { $0.text(0) })
        let known = Set(Migration.all.map(\.name))
        if let unknown = applied.subtracting(known).sorted().first {
            throw StoreError(path: database.path, sql: "", message: "written by a newer Grove (migration '\(unknown)' is unknown here); upgrade Grove to read it")
        }
        for m in Migration.all where !applied.contains(m.name) {
            // The pragma is a no-op inside a transaction, so it goes around it.
            if m.rebuildsReferencedTable { try database.execute("PRAGMA foreign_keys=OFF; PRAGMA legacy_alter_table=ON") }
            try database.transaction {
                try database.execute(m.sql)
                if m.rebuildsReferencedTable, let broken = try database.query("PRAGMA foreign_key_check").first {
                    throw StoreError(path: database.path, sql: m.name, message: "migration leaves a broken reference in \(broken.text(0) ?? "?")")
                }
                try database.run("INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", [.text(m.name), .text(RunStore.now())])
            }
            if m.rebuildsReferencedTable { try database.execute("PRAGMA legacy_alter_table=OFF; PRAGMA foreign_keys=ON") }
        }
        try database.execute("PRAGMA user_version = \(Migration.all.count)")
    }

    static func now() -> String { ISO8601DateFormatter().string(from: Date()) }

    /// Records a new run and returns its id.
    public func beginRun(name: String, recipePath: String?, recipeText: String?, seed: UInt64, groveVersion: String,
                         resumedFrom: Int64? = nil) throws -> Int64 {
        try database.run("""
            INSERT INTO runs (name, recipe_path, recipe_text, seed, grove_version, started_at, status, resumed_from)
            VALUES (?, ?, ?, ?, ?, ?, 'running', ?)
            """, [.text(name), recipePath.map { .text($0) } ?? .null, recipeText.map { .text($0) } ?? .null,
                  .int(Int64(bitPattern: seed)), .text(groveVersion), .text(RunStore.now()), resumedFrom.map { .int($0) } ?? .null])
        return database.lastInsertID
    }

    /// Marks a run ended.
    public func finishRun(_ run: Int64, status: RunStatus, error: String? = nil) throws {
        try database.run("UPDATE runs SET ended_at = ?, status = ?, error = ? WHERE id = ?",
                         [.text(RunStore.now()), .text(status.rawValue), error.map { .text($0) } ?? .null, .int(run)])
    }

    /// Records the start of a stage; `label` (`1:grpo`) is what its metrics and rollouts are stored under.
    public func beginStage(run: Int64, index: Int, label: String, kind: String) throws {
        try database.run("INSERT OR REPLACE INTO stages (run_id, label, stage_index, kind, started_at) VALUES (?, ?, ?, ?, ?)",
                         [.int(run), .text(label), .int(Int64(index)), .text(kind), .text(RunStore.now())])
    }

    public func endStage(run: Int64, label: String) throws {
        try database.run("UPDATE stages SET ended_at = ? WHERE run_id = ? AND label = ?",
                         [.text(RunStore.now()), .int(run), .text(label)])
    }

    /// Records a stage's reward functions: the name each is stored under, its recipe kind and its weight.
    public func recordRewards(run: Int64, stage: String, rewards: [(name: String, kind: String, weight: Double)]) throws {
        try database.transaction {
            for r in rewards {
                try database.run("INSERT OR REPLACE INTO stage_rewards (run_id, stage, name, kind, weight) VALUES (?, ?, ?, ?, ?)",
                                 [.int(run), .text(stage), .text(r.name), .text(r.kind), .double(r.weight)])
            }
        }
    }

    /// Writes one step's metrics in one transaction. A step logged again (a resumed run
    /// repeating it) replaces its values. NaN and ±inf are stored as NULL (SQL has no NaN).
    public func log(run: Int64, stage: String, step: Int, metrics: [(String, Double)], wallTime: Double) throws {
        try logStep(run: run, stage: stage, step: step, rollouts: [], metrics: metrics, wallTime: wallTime)
    }

    /// Marks runs still `running` as `killed`: called by a run that holds the output folder's
    /// lock, so no process is writing them. Returns their ids.
    @discardableResult
    public func markStaleRunsKilled() throws -> [Int64] {
        let stale = try database.query("SELECT id FROM runs WHERE status = 'running'").compactMap { $0.int(0) }
        for id in stale {
            try database.run("UPDATE runs SET status = 'killed', error = ? WHERE id = ?",
                             [.text("the process stopped without recording why (killed?); found by a later run"), .int(id)])
        }
        return stale
    }

    /// Every run, oldest first.
    public func runs() throws -> [RunRecord] {
        try database.query("SELECT id, name, seed, status, started_at, ended_at, error FROM runs ORDER BY id").map {
            RunRecord(id: $0.int(0) ?? 0, name: $0.text(1) ?? "", seed: $0.int(2) ?? 0,
                      status: RunStatus(rawValue: $0.text(3) ?? "") ?? .failed, startedAt: $0.text(4) ?? "",
                      endedAt: $0.text(5), error: $0.text(6))
        }
    }

    /// A metric's (step, value) series for a run, in step order (NULL values as NaN).
    public func metric(run: Int64, name: String) throws -> [(step: Int, value: Double)] {
        try database.query("SELECT step, value FROM metrics WHERE run_id = ? AND name = ? ORDER BY step", [.int(run), .text(name)])
            .map { (Int($0.int(0) ?? 0), $0.double(1) ?? .nan) }
    }

    /// A stage's (step, value) series of one metric over a run and the runs it resumed (a step
    /// logged again by a later run counts once, with the later value), in step order.
    public func stageMetric(run: Int64, stage: String, name: String) throws -> [(step: Int, value: Double)] {
        let rows = try database.query("""
            WITH RECURSIVE chain(id) AS (SELECT ? UNION ALL SELECT runs.resumed_from FROM runs JOIN chain ON runs.id = chain.id
                                         WHERE runs.resumed_from IS NOT NULL)
            SELECT step, value FROM metrics WHERE run_id IN chain AND stage = ? AND name = ? ORDER BY step, run_id
            """, [.int(run), .text(stage), .text(name)])
        var byStep: [Int: Double] = [:]
        for row in rows { byStep[Int(row.int(0) ?? 0)] = row.double(1) ?? .nan }
        return byStep.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// The metric names a run logged.
    public func metricNames(run: Int64) throws -> [String] {
        try database.query("SELECT DISTINCT name FROM metrics WHERE run_id = ? ORDER BY name", [.int(run)]).compactMap { $0.text(0) }
    }
}
