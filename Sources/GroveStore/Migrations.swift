/// A named schema change, applied once per database (recorded in `schema_migrations`).
/// Appending to `Migration.all` is the only way the schema changes.
public struct Migration {
    public let name: String
    public let sql: String

    public static let all: [Migration] = [
        Migration(name: "0001_runs_and_metrics", sql: """
            CREATE TABLE runs (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                recipe_path TEXT,
                recipe_text TEXT,
                seed INTEGER NOT NULL,
                grove_version TEXT NOT NULL,
                started_at TEXT NOT NULL,
                ended_at TEXT,
                status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'interrupted')),
                error TEXT,
                resumed_from INTEGER REFERENCES runs(id)
            );
            CREATE TABLE stages (
                run_id INTEGER NOT NULL REFERENCES runs(id),
                stage_index INTEGER NOT NULL,
                kind TEXT NOT NULL,
                started_at TEXT NOT NULL,
                ended_at TEXT,
                PRIMARY KEY (run_id, stage_index)
            );
            CREATE TABLE metrics (
                run_id INTEGER NOT NULL REFERENCES runs(id),
                stage TEXT NOT NULL,
                step INTEGER NOT NULL,
                name TEXT NOT NULL,
                value REAL,
                wall_time REAL NOT NULL,
                PRIMARY KEY (run_id, stage, step, name)
            );
            CREATE INDEX metrics_by_name ON metrics (run_id, name, step);
            """),
    ]
}
