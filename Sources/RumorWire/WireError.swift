/// Why bytes from the network were rejected. Decoders throw this and nothing else; the state of
/// the caller is untouched and the input can be dropped and counted by `code`.
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable, CustomStringConvertible {
        /// The input ended in the middle of a message.
        case truncated
        /// The bytes are not a well-formed message.
        case malformed
        /// A message type byte Rumor does not know.
        case unknownMessageType(UInt8)
        /// The packet or stream belongs to another swarm (label header mismatch).
        case labelMismatch(expected: String, received: String)
        /// The CRC32 of a checksummed packet does not match.
        case badChecksum
        /// A length or count exceeds the configured bound.
        case tooLarge
        /// A compressed message uses an algorithm other than LZW.
        case unsupportedCompression
        /// The message is encrypted and no keyring is configured.
        case encrypted
        /// No installed key decrypts the message (a wrong key, a foreign swarm, tampering).
        case decryptionFailed
        /// The message is plaintext but this node requires encryption.
        case notEncrypted

        public var description: String {
            switch self {
            case .truncated: "truncated"
            case .malformed: "malformed"
            case .unknownMessageType: "unknown_type"
            case .labelMismatch: "label"
            case .badChecksum: "bad_checksum"
            case .tooLarge: "too_large"
            case .unsupportedCompression: "unsupported_compression"
            case .encrypted: "encrypted"
            case .decryptionFailed: "decrypt"
            case .notEncrypted: "not_encrypted"
            }
        }
    }

    public var code: Code
    /// What exactly was wrong, for logs.
    public var detail: String

    public init(_ code: Code, _ detail: String = "") {
        self.code = code
        self.detail = detail
    }

    public var description: String {
        switch code {
        case .labelMismatch(let expected, let received):
            "swarm label mismatch: expected '\(expected)', received '\(received)'"
        case .unknownMessageType(let type):
            "unknown message type \(type)"
        default:
            detail.isEmpty ? code.description : "\(code): \(detail)"
        }
    }
}
