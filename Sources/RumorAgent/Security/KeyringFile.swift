import Foundation
import RumorWire

/// The keyring on disk: a JSON array of base64 keys, the primary first (Serf's keyring format),
/// readable and writable by the owner only.
enum KeyringFile {
    /// Reads the keyring at `path`; nil when there is no file.
    /// - Throws: `AgentError` `bad_keyring` for an unreadable file or an invalid key.
    static func load(_ path: String) throws -> Keyring? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            try StrictJSON.check(Array(data))
            let texts = try JSONDecoder().decode([String].self, from: data)
            return try Keyring(keys: texts.map(KeyText.decode))
        } catch {
            throw AgentError(
                code: .badKeyring, message: "cannot read the keyring \(path): \((error as? AgentError)?.message ?? "\(error)")",
                hint: "fix the file (a JSON array of base64 keys, primary first) or move it away and pass --encrypt KEY")
        }
    }

    /// Writes `keyring` to `path` atomically (a temporary file renamed over it), mode 0600.
    static func save(_ keyring: Keyring, to path: String) throws {
        let data = try JSONEncoder().encode(keyring.keys.map(KeyText.encode))
        let temporary = path + ".tmp"
        let files = FileManager.default
        try? files.removeItem(atPath: temporary)
        guard files.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw AgentError(
                code: .keyringNotSaved, message: "cannot write \(temporary)", hint: "check the directory's permissions")
        }
        guard rename(temporary, path) == 0 else {
            throw AgentError(
                code: .keyringNotSaved, message: "cannot replace \(path): errno \(errno)", hint: "check the directory's permissions")
        }
    }
}
