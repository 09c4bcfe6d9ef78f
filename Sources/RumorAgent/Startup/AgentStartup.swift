import Foundation
import Logging
import NIOCore
import NIOPosix
import RumorCore
import RumorWire

/// What an agent needs before its sockets open: a usable data directory, the saved state (unless
/// it is too old to merge safely), the keyring, and the address to advertise.
enum AgentStartup {
    /// Creates the data directory (owner-only) if needed and checks that it is writable, so a
    /// bad `--data-dir` fails at start-up rather than at the first write.
    static func prepareDataDirectory(_ path: String, resync: Bool, logger: Logger) throws {
        try createDataDirectory(path)
        guard resync else { return }
        if let aside = try EntryStorage.moveAside(in: path) {
            logger.warning(
                "--resync: moved the saved state aside; starting empty and rebuilding it from the swarm",
                metadata: ["kept": "\(aside)"])
        } else {
            logger.notice("--resync: no saved state to move aside", metadata: ["directory": "\(path)"])
        }
    }

    private static func createDataDirectory(_ path: String) throws {
        let files = FileManager.default
        do {
            try files.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw AgentError(
                code: .badConfig, message: "cannot create data directory \(path): \(error.localizedDescription)",
                hint: DiskFull.hint(for: error, directory: path, otherwise: "pass a writable --data-dir"))
        }
        guard files.isWritableFile(atPath: path) else {
            throw AgentError(
                code: .badConfig, message: "data directory \(path) is not writable (permissions, or a read-only filesystem)",
                hint: "pass a writable --data-dir, or fix its permissions or mount")
        }
    }

    /// The saved state in `storage`. State last reconciled longer ago than the tombstone grace
    /// is discarded (and the storage emptied): tombstones it never saw may be forgotten by now,
    /// so merging it could bring deleted keys back; anti-entropy resends the live state.
    static func loadState(
        from storage: EntryStorage, directory: String, settings: ReplicationSettings, wallMilliseconds wall: UInt64, logger: Logger
    ) throws -> SavedState {
        var saved: EntryStorage.Saved
        var lastSynced: UInt64?
        do {
            saved = try storage.load()
            lastSynced = try storage.lastSynced()
        } catch {
            let opened = EntryStorage.openError(error, path: "\(directory)/\(EntryStorage.fileName)")
            guard opened.code == .storageCorrupt else {
                throw AgentError(
                    code: .storageFailed, message: "cannot read the saved state in \(directory): \(error)",
                    hint: DiskFull.hint(for: error, directory: directory, otherwise: EntryStorage.resyncHint))
            }
            throw opened
        }
        let probe = Replication(localName: "", settings: settings, seed: 0)
        if let synced = lastSynced, probe.isStale(lastSyncedMilliseconds: synced, wallMilliseconds: wall) {
            logger.warning(
                "saved state is older than the tombstone grace period; discarding it and resyncing",
                metadata: ["lastSyncedSecondsAgo": "\((wall - synced) / 1000)", "keys": "\(saved.store.entries.count)"])
            saved.changes.reset()
            try storage.reset(compactedThrough: saved.changes.compactedThrough)
            saved.store = KeyValueStore()
            lastSynced = nil
        }
        return SavedState(store: saved.store, changes: saved.changes, lastSynced: lastSynced)
    }

    /// The keyring to start with: the saved one if any, else `--encrypt`'s key (saved then).
    static func loadKeyring(_ configuration: AgentConfiguration, path: String?, logger: Logger) throws -> Keyring {
        if let path, let saved = try KeyringFile.load(path) {
            if let key = configuration.encryptionKey, !saved.keys.contains(key) {
                logger.warning(
                    "--encrypt is ignored: the saved keyring (which holds rotations) does not contain that key",
                    metadata: ["keyring": "\(path)"])
            }
            return saved
        }
        guard let key = configuration.encryptionKey else { return Keyring() }
        let keyring: Keyring
        do {
            keyring = try Keyring(keys: [key])
        } catch {
            throw AgentError(code: .badConfig, message: "--encrypt: \(error)", hint: "make a key with `rumor keygen`")
        }
        if let path { try KeyringFile.save(keyring, to: path) }
        return keyring
    }

    /// The address announced to others: `--advertise` if given, the bind address if specific,
    /// else the first non-loopback IPv4 address of this host (127.0.0.1 when there is none).
    static func advertisedAddress(for configuration: AgentConfiguration) throws -> NodeAddress {
        if configuration.transport == .pilot {
            // The daemon tells the address once the agent connects to it (`Agent.run`).
            return NodeAddress(ip: [0, 0, 0, 0, 0, 0], port: configuration.pilotPort)
        }
        let port = configuration.advertisePort ?? configuration.bindPort
        guard let port16 = UInt16(exactly: port) else { throw AgentError.badAddress("\(port)") }
        if let host = configuration.advertiseHost {
            return try NodeAddress.resolve("\(host):\(port16)", defaultPort: Int(port16))
        }
        let bind = configuration.bindHost
        if bind != "0.0.0.0", bind != "::", !bind.isEmpty {
            return try NodeAddress.resolve(bind.contains(":") ? "[\(bind)]:\(port16)" : "\(bind):\(port16)", defaultPort: port)
        }
        let devices = (try? System.enumerateDevices()) ?? []
        for device in devices {
            guard let address = device.address, case .v4 = address, let node = NodeAddress(address),
                node.ip.first != 127
            else { continue }
            return NodeAddress(ip: node.ip, port: port16)
        }
        return NodeAddress(ip: [127, 0, 0, 1], port: port16)
    }
}
