import Foundation
import GRDB
import RumorCore

/// The durable copy of a node's key-value state: SQLite (WAL) in the data directory.
///
/// A write returns once its transaction has committed to the write-ahead log, so a process
/// killed right after (kill -9) loses nothing; `synchronous = NORMAL` trades the last
/// transactions on a power loss for throughput, as WAL databases commonly do.
final class EntryStorage: Sendable {
    private let database: DatabasePool

    /// Opens (creating if needed) `state.sqlite` in `directory`.
    /// - Throws: `AgentError` (`storage_failed`) with the path and the SQLite error.
    init(directory: String) throws {
        let path = (directory as NSString).appendingPathComponent("state.sqlite")
        do {
            var configuration = Configuration()
            configuration.prepareDatabase { db in
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
            }
            database = try DatabasePool(path: path, configuration: configuration)
            var migrator = DatabaseMigrator()
            migrator.registerMigration("v1") { db in
                try db.execute(
                    sql: """
                        CREATE TABLE entry (
                            key TEXT PRIMARY KEY NOT NULL,
                            value BLOB,
                            timestamp INTEGER NOT NULL,
                            origin TEXT NOT NULL,
                            expires INTEGER,
                            ephemeral INTEGER NOT NULL
                        ) WITHOUT ROWID;
                        CREATE TABLE digest (origin TEXT PRIMARY KEY NOT NULL, timestamp INTEGER NOT NULL) WITHOUT ROWID;
                        """)
            }
            migrator.registerMigration("v2: last sync") { db in
                try db.execute(sql: "CREATE TABLE sync (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL)")
            }
            try migrator.migrate(database)
        } catch {
            throw AgentError(
                code: "storage_failed", message: "cannot open \(path): \(error)",
                hint: "check that --data-dir is writable and not used by another agent")
        }
    }

    /// Everything saved: the store as it was when last written.
    func load() throws -> KeyValueStore {
        try database.read { db in
            let entries = try Row.fetchAll(db, sql: "SELECT key, value, timestamp, origin, expires, ephemeral FROM entry").map { row in
                let value: Data? = row["value"]
                let timestamp: Int64 = row["timestamp"]
                let expires: Int64? = row["expires"]
                return Entry(
                    key: row["key"], value: value.map { [UInt8]($0) },
                    version: Version(timestamp: HybridTimestamp(rawValue: UInt64(bitPattern: timestamp)), origin: row["origin"]),
                    expiresAtMilliseconds: expires.map { UInt64(bitPattern: $0) }, ephemeral: row["ephemeral"])
            }
            var digest: [String: HybridTimestamp] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT origin, timestamp FROM digest") {
                let timestamp: Int64 = row["timestamp"]
                digest[row["origin"]] = HybridTimestamp(rawValue: UInt64(bitPattern: timestamp))
            }
            return KeyValueStore(entries: entries, digest: digest)
        }
    }

    /// Saves winning entries and digest values in one transaction.
    func save(_ entries: [Entry], digest: [String: HybridTimestamp]) throws {
        try database.write { db in
            for entry in entries {
                try db.execute(
                    sql: """
                        INSERT INTO entry (key, value, timestamp, origin, expires, ephemeral) VALUES (?, ?, ?, ?, ?, ?)
                        ON CONFLICT(key) DO UPDATE SET value = excluded.value, timestamp = excluded.timestamp,
                            origin = excluded.origin, expires = excluded.expires, ephemeral = excluded.ephemeral
                        """,
                    arguments: [
                        entry.key, entry.value.map { Data($0) }, Int64(bitPattern: entry.version.timestamp.rawValue),
                        entry.version.origin, entry.expiresAtMilliseconds.map { Int64(bitPattern: $0) }, entry.ephemeral,
                    ])
            }
            for (origin, timestamp) in digest {
                try db.execute(
                    sql: """
                        INSERT INTO digest (origin, timestamp) VALUES (?, ?)
                        ON CONFLICT(origin) DO UPDATE SET timestamp = max(timestamp, excluded.timestamp)
                        """,
                    arguments: [origin, Int64(bitPattern: timestamp.rawValue)])
            }
        }
    }

    /// Deletes forgotten keys (collected tombstones and expired values).
    func forget(_ keys: [String]) throws {
        try database.write { db in
            for key in keys { try db.execute(sql: "DELETE FROM entry WHERE key = ?", arguments: [key]) }
        }
    }

    /// When the state was last reconciled with a peer (milliseconds since the epoch), if ever.
    func lastSynced() throws -> UInt64? {
        try database.read { db in
            try Int64.fetchOne(db, sql: "SELECT last FROM sync WHERE id = 1").map { UInt64(bitPattern: $0) }
        }
    }

    /// Records a completed reconciliation with a peer.
    func recordSync(at milliseconds: UInt64) throws {
        try database.write { db in
            try db.execute(
                sql: "INSERT INTO sync (id, last) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET last = excluded.last",
                arguments: [Int64(bitPattern: milliseconds)])
        }
    }

    /// Discards every saved entry and digest (the state is too old to merge safely).
    func reset() throws {
        try database.write { db in
            try db.execute(sql: "DELETE FROM entry; DELETE FROM digest; DELETE FROM sync")
        }
    }
}
