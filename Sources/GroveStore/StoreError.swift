/// A run-database failure, naming the database file, the statement and SQLite's message.
public struct StoreError: Error, CustomStringConvertible {
    public let path: String
    public let sql: String
    public let message: String

    public var description: String {
        let statement = sql.isEmpty ? "" : " (in: \(sql.prefix(80))\(sql.count > 80 ? "…" : ""))"
        return "\(path): \(message)\(statement)"
    }
}
