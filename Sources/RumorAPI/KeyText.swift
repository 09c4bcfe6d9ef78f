import Foundation
import RumorWire

/// A gossip encryption key as people, flags, requests and the keyring file carry it: base64 text,
/// as `rumor keygen` prints it.
public enum KeyText {
    /// The key written as `text` (surrounding whitespace ignored).
    /// - Throws: `AgentError` `bad_key` when `text` is not base64 or the key is not 16, 24 or 32 bytes.
    public static func decode(_ text: String) throws(AgentError) -> [UInt8] {
        guard let data = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw AgentError(code: .badKey, message: "the key is not base64", hint: "make a key with `rumor keygen`")
        }
        guard Keyring.validSizes.contains(data.count) else {
            throw AgentError(
                code: .badKey, message: "a key must be 16, 24 or 32 bytes, not \(data.count)",
                hint: "make a key with `rumor keygen`")
        }
        return Array(data)
    }

    /// `key` as base64 text.
    public static func encode(_ key: [UInt8]) -> String {
        Data(key).base64EncodedString()
    }
}
