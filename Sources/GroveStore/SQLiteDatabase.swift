import CSQLite
import Foundation

/// A thin wrapper over one SQLite connection: WAL journal, prepared-statement cache,
/// transactions that roll back when their body throws. Used from one thread at a time.
public final class SQLiteDatabase {
    public let path: String
    private var db: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]

    /// SQLite's way of saying "copy this string now" when binding text.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// Opens (creating if needed) the database at `path`.
    public init(path: String) throws {
        self.path = path
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent()
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw StoreError(path: path, sql: "", message: "cannot create its folder: \(error.localizedDescription)")
        }
        if sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nil) != SQLITE_OK {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close(db)
            db = nil
            throw StoreError(path: path, sql: "", message: message)
        }
        sqlite3_busy_timeout(db, 5000)
        try execute("PRAGMA journal_mode=WAL")
        try execute("PRAGMA synchronous=NORMAL")
        try execute("PRAGMA foreign_keys=ON")
    }

    deinit {
        for (_, s) in statements { sqlite3_finalize(s) }
        sqlite3_close(db)
    }

    func failure(_ sql: String) -> StoreError {
        StoreError(path: path, sql: sql, message: String(cString: sqlite3_errmsg(db)))
    }

    /// Runs one or more statements without parameters.
    public func execute(_ sql: String) throws {
        if sqlite3_exec(db, sql, nil, nil, nil) != SQLITE_OK { throw failure(sql) }
    }

    /// A bindable value.
    public enum Value {
        case int(Int64), double(Double), text(String), null
    }

    private func prepared(_ sql: String) throws -> OpaquePointer {
        if let s = statements[sql] { sqlite3_reset(s); sqlite3_clear_bindings(s); return s }
        var s: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &s, nil) == SQLITE_OK, let s else { throw failure(sql) }
        statements[sql] = s
        return s
    }

    private func bind(_ s: OpaquePointer, _ values: [Value], _ sql: String) throws {
        for (i, v) in values.enumerated() {
            let index = Int32(i + 1), rc: Int32
            switch v {
            case .int(let x): rc = sqlite3_bind_int64(s, index, x)
            case .double(let x): rc = x.isFinite ? sqlite3_bind_double(s, index, x) : sqlite3_bind_null(s, index)
            case .text(let x): rc = sqlite3_bind_text(s, index, x, -1, SQLiteDatabase.transient)
            case .null: rc = sqlite3_bind_null(s, index)
            }
            if rc != SQLITE_OK { throw failure(sql) }
        }
    }

    /// Runs a statement with parameters (`?`), returning nothing.
    public func run(_ sql: String, _ values: [Value] = []) throws {
        let s = try prepared(sql)
        try bind(s, values, sql)
        let rc = sqlite3_step(s)
        sqlite3_reset(s)
        if rc != SQLITE_DONE && rc != SQLITE_ROW { throw failure(sql) }
    }

    /// A result row, column by column.
    public struct Row {
        let values: [Value]
        public func int(_ i: Int) -> Int64? { if case .int(let x) = values[i] { return x }; if case .double(let x) = values[i] { return Int64(x) }; return nil }
        public func double(_ i: Int) -> Double? { if case .double(let x) = values[i] { return x }; if case .int(let x) = values[i] { return Double(x) }; return nil }
        public func text(_ i: Int) -> String? { if case .text(let x) = values[i] { return x }; return nil }
    }

    /// Runs a query and returns every row.
    public func query(_ sql: String, _ values: [Value] = []) throws -> [Row] {
        let s = try prepared(sql)
        try bind(s, values, sql)
        defer { sqlite3_reset(s) }
        var rows: [Row] = []
        while true {
            let rc = sqlite3_step(s)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw failure(sql) }
            rows.append(Row(values: (0..<sqlite3_column_count(s)).map { c in
                switch sqlite3_column_type(s, c) {
                case SQLITE_INTEGER: return .int(sqlite3_column_int64(s, c))
                case SQLITE_FLOAT: return .double(sqlite3_column_double(s, c))
                case SQLITE_TEXT: return .text(String(cString: sqlite3_column_text(s, c)))
                default: return .null
                }
            }))
        }
        return rows
    }

    /// The rowid of the last insert.
    public var lastInsertID: Int64 { sqlite3_last_insert_rowid(db) }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    public func transaction<R>(_ body: () throws -> R) throws -> R {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }
}
