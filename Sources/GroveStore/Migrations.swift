/// A named schema change, applied once per database (recorded in `schema_migrations`).
/// Appending to `Migration.all` is the only way the schema changes.
public struct Migration {
    public let name: String
    public let sql: String
    /// The migration rebuilds a table other tables reference: it runs with foreign keys off and
    /// is checked after (SQLite's procedure for schema changes ALTER TABLE cannot make).
    public var rebuildsReferencedTable = false

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
        Migration(name: "0002_rollouts", sql: """
            CREATE TABLE rollouts (
                id INTEGER PRIMARY KEY,
                run_id INTEGER NOT NULL REFERENCES runs(id),
                stage TEXT NOT NULL,
                step INTEGER NOT NULL,
                prompt_id INTEGER NOT NULL,
                prompt TEXT NOT NULL,
                row TEXT,
                group_index INTEGER NOT NULL,
                sample_index INTEGER NOT NULL,
                completion TEXT NOT NULL,
                completion_ids TEXT NOT NULL,
                finish_reason TEXT NOT NULL CHECK (finish_reason IN ('stop', 'length')),
                length INTEGER NOT NULL,
                reward REAL,
                advantage REAL NOT NULL,
                group_mean REAL,
                group_std REAL,
                logprob_sum REAL NOT NULL,
                UNIQUE (run_id, stage, step, group_index, sample_index)
            );
            CREATE INDEX rollouts_by_step ON rollouts (run_id, step);
            CREATE INDEX rollouts_by_prompt ON rollouts (run_id, prompt_id, step);
            CREATE TABLE rollout_rewards (
                rollout_id INTEGER NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                value REAL,
                PRIMARY KEY (rollout_id, name)
            );
            """),
        // Stages are keyed by their label (`1:grpo`, and the control `1:sft_control` beside it);
        // dynamic sampling's dropped groups are stored with a flag; each grpo stage's rewards and weights.
        Migration(name: "0003_stage_labels_dropped_groups_reward_weights", sql: """
            CREATE TABLE stages_by_label (
                run_id INTEGER NOT NULL REFERENCES runs(id),
                label TEXT NOT NULL,
                stage_index INTEGER NOT NULL,
                kind TEXT NOT NULL,
                started_at TEXT NOT NULL,
                ended_at TEXT,
                PRIMARY KEY (run_id, label)
            );
            INSERT INTO stages_by_label SELECT run_id, stage_index || ':' || kind, stage_index, kind, started_at, ended_at FROM stages;
            DROP TABLE stages;
            ALTER TABLE stages_by_label RENAME TO stages;
            ALTER TABLE rollouts ADD COLUMN dropped INTEGER NOT NULL DEFAULT 0;
            CREATE TABLE stage_rewards (
                run_id INTEGER NOT NULL REFERENCES runs(id),
                stage TEXT NOT NULL,
                name TEXT NOT NULL,
                kind TEXT NOT NULL,
                weight REAL NOT NULL,
                PRIMARY KEY (run_id, stage, name)
            );
            """),
        // A run whose process died without a word is marked `killed` (the status check gains it).
        Migration(name: "0004_killed_runs", sql: """
            CREATE TABLE runs_with_killed (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                recipe_path TEXT,
                recipe_text TEXT,
                seed INTEGER NOT NULL,
                grove_version TEXT NOT NULL,
                started_at TEXT NOT NULL,
                ended_at TEXT,
                status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'interrupted', 'killed')),
                error TEXT,
                resumed_from INTEGER REFERENCES runs(id)
            );
            INSERT INTO runs_with_killed SELECT id, name, recipe_path, recipe_text, seed, grove_version, started_at, ended_at, status,
                                                error, resumed_from FROM runs;
            DROP TABLE runs;
            ALTER TABLE runs_with_killed RENAME TO runs;
            """, rebuildsReferencedTable: true),
    ]
}
