import Crypto

/// The gossip encryption keys of one node, as memberlist's keyring: AES keys of 16, 24 or 32
/// bytes; the primary key encrypts everything sent, every installed key is tried on receipt.
///
/// Rotating without downtime is three steps run across the swarm: install the new key
/// everywhere (each node now reads both), make it primary everywhere (each node now writes
/// with it, and all can read it), then remove the old key.
public struct Keyring: Sendable, Hashable {
    /// Installed keys, the primary first.
    public private(set) var keys: [[UInt8]]

    /// An empty keyring: encryption off.
    public init() {
        keys = []
    }

    /// A keyring of `keys`, the first one primary.
    /// - Throws: `KeyringError.badKeySize` for a key that is not 16, 24 or 32 bytes.
    public init(keys: [[UInt8]]) throws(KeyringError) {
        self.keys = []
        for key in keys { try install(key) }
    }

    /// Whether traffic is encrypted (at least one key installed).
    public var isEnabled: Bool { !keys.isEmpty }

    /// The key that encrypts outgoing traffic.
    public var primary: [UInt8]? { keys.first }

    /// Adds `key` for receiving (and makes it primary when it is the first). Installing a key
    /// that is already there changes nothing.
    public mutating func install(_ key: [UInt8]) throws(KeyringError) {
        guard Self.validSizes.contains(key.count) else { throw .badKeySize(key.count) }
        guard !keys.contains(key) else { return }
        guard keys.count < Self.maximumKeys else { throw .full }
        keys.append(key)
    }

    /// Makes an installed `key` the primary.
    public mutating func use(_ key: [UInt8]) throws(KeyringError) {
        guard let index = keys.firstIndex(of: key) else { throw .notInstalled }
        keys.swapAt(0, index)
        // Keep the rest in installation order: the old primary goes back to second place.
        if index > 1 { keys.insert(keys.remove(at: index), at: 1) }
    }

    /// Removes an installed key other than the primary.
    public mutating func remove(_ key: [UInt8]) throws(KeyringError) {
        guard let index = keys.firstIndex(of: key) else { throw .notInstalled }
        guard index != 0 else { throw .removingPrimary }
        keys.remove(at: index)
    }

    /// AES-128, AES-192 and AES-256.
    public static let validSizes: Set<Int> = [16, 24, 32]
    /// Most keys installed at once (each one is tried on every message that fails the others).
    public static let maximumKeys = 16
}

/// Why a keyring operation was refused; the keyring is unchanged.
public enum KeyringError: Error, Hashable, Sendable, CustomStringConvertible {
    case badKeySize(Int)
    case notInstalled
    case removingPrimary
    case full

    public var description: String {
        switch self {
        case .badKeySize(let size): "a key must be 16, 24 or 32 bytes (AES-128/192/256), not \(size)"
        case .notInstalled: "the key is not installed"
        case .removingPrimary: "the primary key cannot be removed; make another key primary first"
        case .full: "the keyring already holds \(Keyring.maximumKeys) keys; remove one first"
        }
    }
}

/// memberlist's message encryption: `version(1) nonce(12) AES-GCM(ciphertext + tag(16))`.
/// Version 0 pads the plaintext with PKCS#7 to the AES block size; version 1 (sent by
/// protocol version 2 and later, and by Rumor) does not. `authenticated` is the associated
/// data: the swarm label for packets; the stream header plus the label for streams.
public enum GossipCipher {
    /// Bytes encryption adds to a version-1 message.
    public static let overhead = 1 + nonceSize + tagSize
    static let nonceSize = 12
    static let tagSize = 16

    /// Encrypts `plain` with `key` (version 1, a fresh random nonce).
    public static func seal(_ plain: [UInt8], key: [UInt8], authenticated: [UInt8]) -> [UInt8] {
        let symmetric = SymmetricKey(data: key)
        // Keys are validated on installation, so sealing cannot fail for a bad key size.
        guard let box = try? AES.GCM.seal(plain, using: symmetric, nonce: AES.GCM.Nonce(), authenticating: authenticated)
        else { preconditionFailure("AES-GCM refused a \(key.count)-byte key") }
        var out: [UInt8] = [1]
        out.reserveCapacity(overhead + plain.count)
        out += box.nonce
        out += box.ciphertext
        out += box.tag
        return out
    }

    /// Decrypts `message` with the first installed key that authenticates it.
    /// - Throws: `WireError` `.truncated` (shorter than the overhead), `.malformed` (unknown
    ///   version or bad padding) or `.decryptionFailed` (no key fits: a wrong key, a foreign
    ///   swarm, or tampering).
    public static func open(_ message: ArraySlice<UInt8>, keyring: Keyring, authenticated: [UInt8]) throws(WireError) -> [UInt8] {
        guard let version = message.first else { throw WireError(.truncated, "empty encrypted message") }
        guard version <= 1 else { throw WireError(.malformed, "unknown encryption version \(version)") }
        let base = message.startIndex
        let minimum = 1 + nonceSize + tagSize + (version == 0 ? 16 : 0)
        guard message.count >= minimum else { throw WireError(.truncated, "encrypted message of \(message.count) bytes") }
        let nonceBytes = message[(base + 1)..<(base + 1 + nonceSize)]
        let ciphertext = message[(base + 1 + nonceSize)..<(message.endIndex - tagSize)]
        let tag = message[(message.endIndex - tagSize)...]
        guard let nonce = try? AES.GCM.Nonce(data: nonceBytes),
            let box = try? AES.GCM.SealedBox(nonce: nonce, ciphertext: ciphertext, tag: tag)
        else { throw WireError(.malformed, "unreadable encrypted message") }
        for key in keyring.keys {
            guard let plain = try? AES.GCM.open(box, using: SymmetricKey(data: key), authenticating: authenticated) else {
                continue
            }
            let bytes = Array(plain)
            return version == 0 ? try unpad(bytes) : bytes
        }
        throw WireError(.decryptionFailed, "no installed key decrypts the message")
    }

    /// Strips PKCS#7 padding (version 0), checking every padding byte.
    static func unpad(_ bytes: [UInt8]) throws(WireError) -> [UInt8] {
        guard let last = bytes.last, last >= 1, last <= 16, Int(last) <= bytes.count,
            bytes.suffix(Int(last)).allSatisfy({ $0 == last })
        else { throw WireError(.malformed, "bad padding in a version-0 encrypted message") }
        return Array(bytes.dropLast(Int(last)))
    }

    /// Encrypts in memberlist's version 0 (PKCS#7-padded); spoken only to protocol-1 peers and
    /// kept for tests of the decoder.
    public static func sealVersion0(_ plain: [UInt8], key: [UInt8], authenticated: [UInt8]) -> [UInt8] {
        let padding = 16 - plain.count % 16
        let padded = plain + [UInt8](repeating: UInt8(padding), count: padding)
        var out = seal(padded, key: key, authenticated: authenticated)
        out[0] = 0
        return out
    }
}
