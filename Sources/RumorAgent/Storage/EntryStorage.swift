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
    /// The data directory.
    let directory: String

    /// The file name in the data directory.
    static let fileName = "state.sqlite"
    /// The tables a Rumor state file holds (besides SQLite's own).
    private static let tables: Set<String> = ["grdb_migrations", "entry", "digest", "sync", "changelog"]

    /// The hint for a state file the agent cannot use.
    static let resyncHint =
        "start with `rumor agent --resync` (same flags): it moves the file aside, kept, and rebuilds the state from the swarm"

    /// Opens (creating if needed) `state.sqlite` in `directory`.
    /// - Throws: `AgentError`: `storage_corrupt` when the file is not a SQLite database or holds
    ///   another program's tables; `storage_failed` with the path and the SQLite error otherwise.
    init(directory: String) throws {
        self.directory = directory
        let path = (directory as NSString).appendingPathComponent(Self.fileName)
        try Self.checkHeader(path)
        do {
            var configuration = Configuration()
            configuration.prepareDatabase { db in
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
            }
            try Self.checkTables(path)
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
            migrator.registerMigration("v3: change log") { db in
                try db.execute(
                    sql: """
                        ALTER TABLE entry ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
                        CREATE TABLE changelog (id INTEGER PRIMARY KEY CHECK (id = 1), compacted INTEGER NOT NULL);
                        """)
            }
            migrator.registerMigration("v4: writer generations") { db in
                // Saved writes from before generations belong to generation 0 of their node.
                try db.execute(
                    sql: """
                        ALTER TABLE entry ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
                        CREATE TABLE writer_digest (
                            origin TEXT NOT NULL,
                            generation INTEGER NOT NULL,
                            timestamp INTEGER NOT NULL,
                            PRIMARY KEY (origin, generation)
                        ) WITHOUT ROWID;
                        INSERT INTO writer_digest (origin, generation, timestamp) SELECT origin, 0, timestamp FROM digest;
                        DROP TABLE digest;
                        ALTER TABLE writer_digest RENAME TO digest;
                        """)
            }
            try migrator.migrate(database)
        } catch let error as AgentError {
            throw error
        } catch {
            throw Self.openError(error, path: path)
        }
    }

    /// A file that exists and does not start like a SQLite database is damaged or not ours.
    private static func checkHeader(_ path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { return }
        defer { try? handle.close() }
        let header = (try? handle.read(upToCount: 16)) ?? Data()
        guard header.isEmpty || header == Data("SQLite format 3\0".utf8) else {
            throw AgentError(
                code: .storageCorrupt, message: "\(path) is not a SQLite database: the file is damaged or another program's",
                hint: resyncHint)
        }
    }

    /// A database holding tables Rumor never makes is another program's: refused, and left
    /// untouched (read-only until it passes).
    private static func checkTables(_ path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
        var readOnly = Configuration()
        readOnly.readonly = true
        let names = try DatabaseQueue(path: path, configuration: readOnly).read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        }
        let foreign = names.filter { !tables.contains($0) }
        guard foreign.isEmpty else {
            throw AgentError(
                code: .storageCorrupt,
                message: "\(path) is another program's database (tables \(foreign.sorted().joined(separator: ", ")))",
                hint: "point --data-dir at a directory of its own, or \(resyncHint)")
        }
    }

    /// The start-up error for a state file SQLite refused.
    static func openError(_ error: any Error, path: String) -> AgentError {
        if let database = error as? DatabaseError,
            [.SQLITE_CORRUPT, .SQLITE_NOTADB].contains(database.resultCode)
        {
            return AgentError(code: .storageCorrupt, message: "\(path) is damaged: \(database.message ?? "\(error)")", hint: resyncHint)
        }
        let directory = (path as NSString).deletingLastPathComponent
        return AgentError(
            code: .storageFailed, message: "cannot open \(path): \(error)",
            hint: DiskFull.hint(
                for: error, directory: directory, otherwise: "check that --data-dir is writable and not used by another agent"))
    }

    /// Moves the state file (and its write-ahead log) aside as `state.sqlite.broken-TIME…`,
    /// kept for inspection. Returns the new path of the main file, nil when there was none.
    static func moveAside(in directory: String, now: Date = Date()) throws -> String? {
        let files = FileManager.default
        let path = (directory as NSString).appendingPathComponent(fileName)
        guard files.fileExists(atPath: path) else { return nil }
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        formatter.timeZone = TimeZone(identifier: "UTC")
        let aside = "\(path).broken-\(formatter.string(from: now))"
        do {
            for suffix in ["", "-wal", "-shm"] where files.fileExists(atPath: path + suffix) {
                try files.moveItem(atPath: path + suffix, toPath: aside + suffix)
            }
        } catch {
            throw AgentError(
                code: .storageFailed, message: "cannot move \(path) aside: \(error.localizedDescription)",
                hint: "check that --data-dir is writable")
        }
        return aside
    }

    /// What `load` returns: the store, and the change log watchers resume from.
    struct Saved {
        var store: KeyValueStore
        var changes: ChangeLog
    }

    /// Everything saved: the store and change log as they were when last written. Values stay
    /// on disk (entries carry their size, `Entry.storedValueBytes`); `values(of:)` loads them.
    func load() throws -> Saved {
        try database.read { db in
            var sequences: [String: UInt64] = [:]
            let rows = try Row.fetchCursor(
                db, sql: "SELECT key, length(value) AS size, timestamp, origin, generation, expires, ephemeral, seq FROM entry")
            var entries: [Entry] = []
            while let row = try rows.next() {
                let seq: Int64 = row["seq"]
                sequences[row["key"]] = UInt64(bitPattern: seq)
                let size: Int? = row["size"]
                let timestamp: Int64 = row["timestamp"]
                let expires: Int64? = row["expires"]
                var entry = Entry(
                    key: row["key"], value: nil,
                    version: Version(timestamp: HybridTimestamp(rawValue: UInt64(bitPattern: timestamp)), writer: Self.writer(row)),
                    expiresAtMilliseconds: expires.map { UInt64(bitPattern: $0) }, ephemeral: row["ephemeral"])
                entry.storedValueBytes = size
                entries.append(entry)
            }
            var digest: Digest = [:]
            for row in try Row.fetchAll(db, sql: "SELECT origin, generation, timestamp FROM digest") {
                let timestamp: Int64 = row["timestamp"]
                digest[Self.writer(row)] = HybridTimestamp(rawValue: UInt64(bitPattern: timestamp))
            }
            let compacted = try Int64.fetchOne(db, sql: "SELECT compacted FROM changelog WHERE id = 1") ?? 0
            var store = KeyValueStore(entries: entries, digest: digest)
            for (key, sequence) in sequences { store.setSequence(sequence, of: key) }
            return Saved(
                store: store,
                changes: ChangeLog(restoring: sequences, compactedThrough: UInt64(bitPattern: compacted)))
        }
    }

    /// The writer of a row with `origin` and `generation` columns.
    private static func writer(_ row: Row) -> Writer {
        let generation: Int64 = row["generation"]
        return Writer(name: row["origin"], generation: UInt64(bitPattern: generation))
    }

    /// The values of these entries as saved, by key, where the saved version is the entry's.
    func values(of entries: [Entry]) throws -> [String: [UInt8]] {
        var values: [String: [UInt8]] = [:]
        let wanted = Dictionary(entries.map { ($0.key, $0.version) }, uniquingKeysWith: { $1 })
        try database.read { db in
            for chunk in stride(from: 0, to: entries.count, by: 500).map({ entries[$0..<min($0 + 500, entries.count)] }) {
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                let rows = try Row.fetchCursor(
                    db, sql: "SELECT key, value, timestamp, origin, generation FROM entry WHERE key IN (\(marks))",
                    arguments: StatementArguments(chunk.map(\.key)))
                while let row = try rows.next() {
                    let key: String = row["key"]
                    let timestamp: Int64 = row["timestamp"]
                    let version = Version(timestamp: HybridTimestamp(rawValue: UInt64(bitPattern: timestamp)), writer: Self.writer(row))
                    guard wanted[key] == version, let value: Data = row["value"] else { continue }
                    values[key] = [UInt8](value)
                }
            }
        }
        return values
    }

    /// Saves winning entries (with their change-log sequence numbers) and digest values in one
    /// transaction.
    func save(_ entries: [Entry], sequences: [String: UInt64], digest: Digest) throws {
        try database.write { db in
            // Compiled once per connection, not once per row.
            let upsert = try db.cachedStatement(
                sql: """
                    INSERT INTO entry (key, value, timestamp, origin, generation, expires, ephemeral, seq)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(key) DO UPDATE SET value = excluded.value, timestamp = excluded.timestamp,
                        origin = excluded.origin, generation = excluded.generation, expires = excluded.expires,
                        ephemeral = excluded.ephemeral, seq = excluded.seq
                    """)
            for entry in entries {
                try upsert.execute(
                    arguments: [
                        entry.key, entry.value.map { Data($0) }, Int64(bitPattern: entry.version.timestamp.rawValue),
                        entry.version.writer.name, Int64(bitPattern: entry.version.writer.generation),
                        entry.expiresAtMilliseconds.map { Int64(bitPattern: $0) }, entry.ephemeral,
                        Int64(bitPattern: sequences[entry.key] ?? 0),
                    ])
            }
            for (writer, timestamp) in digest {
                try db.execute(
                    sql: """
                        INSERT INTO digest (origin, generation, timestamp) VALUES (?, ?, ?)
                        ON CONFLICT(origin, generation) DO UPDATE SET timestamp = max(timestamp, excluded.timestamp)
                        """,
                    arguments: [writer.name, Int64(bitPattern: writer.generation), Int64(bitPattern: timestamp.rawValue)])
            }
        }
    }

    /// Records new change-log sequence numbers of keys whose visibility changed without a write
    /// (a value expired, an ephemeral value's writer left or came back).
    func touch(_ sequences: [String: UInt64]) throws {
        try database.write { db in
            let update = try db.cachedStatement(sql: "UPDATE entry SET seq = ? WHERE key = ?")
            for (key, seq) in sequences {
                try update.execute(arguments: [Int64(bitPattern: seq), key])
            }
        }
    }

    /// Deletes forgotten keys (collected tombstones and expired values) and records how far the
    /// change log is now compacted.
    func forget(_ keys: [String], compactedThrough: UInt64) throws {
        try database.write { db in
            for key in keys { try db.execute(sql: "DELETE FROM entry WHERE key = ?", arguments: [key]) }
            try Self.recordCompaction(compactedThrough, db)
        }
    }

    private static func recordCompaction(_ compacted: UInt64, _ db: Database) throws {
        try db.execute(
            sql: "INSERT INTO changelog (id, compacted) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET compacted = excluded.compacted",
            arguments: [Int64(bitPattern: compacted)])
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

    /// Carries out one change the node asked for.
    func apply(_ write: StorageWrite) throws {
        switch write {
        case .save(let entries, let sequences, let digest): try save(entries, sequences: sequences, digest: digest)
        case .touch(let sequences): try touch(sequences)
        case .forget(let keys, let compactedThrough): try forget(keys, compactedThrough: compactedThrough)
        case .synced(let milliseconds): try recordSync(at: milliseconds)
        }
    }

    /// Discards every saved entry and digest (the state is too old to merge safely); the change
    /// log counts as compacted through `compactedThrough` so sequence numbers are never reused.
    func reset(compactedThrough: UInt64) throws {
        try database.write { db in
            try db.execute(sql: "DELETE FROM entry; DELETE FROM digest; DELETE FROM sync")
            try Self.recordCompaction(compactedThrough, db)
        }
    }
}
