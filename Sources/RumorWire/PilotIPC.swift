/// The pilot-daemon IPC protocol (see docs/pilot-ipc.md): frames of `u32 length` (big-endian,
/// counting the command byte) + command + payload, at most 1 MiB of body; addresses of 6 bytes
/// (`u16` network, `u32` node). Pure: bytes in, values out.
public enum PilotIPC {
    /// The largest frame body the daemon accepts; a larger one makes it drop the client.
    public static let maximumBody = 1 << 20

    /// Command bytes of the operations Rumor uses.
    public enum Command: UInt8, Sendable {
        case bind = 0x01, bindOK = 0x02
        case dial = 0x03, dialOK = 0x04
        case accept = 0x05
        case send = 0x06
        case recv = 0x07
        case close = 0x08, closed = 0x09
        case error = 0x0A
        case sendTo = 0x0B
        case recvFrom = 0x0C
        case info = 0x0D, infoOK = 0x0E
        case handshake = 0x0F, handshakeOK = 0x10
        case resolveHostname = 0x11, resolveHostnameOK = 0x12
        case setTags = 0x19, setTagsOK = 0x1A
        case health = 0x21, healthOK = 0x22
        case cancel = 0x2B
        case unbind = 0x37, unbindOK = 0x38
        case sendToConfirm = 0x39, sendToConfirmOK = 0x3A
    }

    /// Sub-commands of `handshake`.
    public enum Handshake: UInt8, Sendable {
        case request = 1, approve = 2, reject = 3, pending = 4, trusted = 5, revoke = 6, wait = 7
    }

    /// One frame: a command and its payload.
    public struct Frame: Sendable, Hashable {
        public var command: UInt8
        public var payload: [UInt8]

        public init(_ command: Command, _ payload: [UInt8] = []) {
            self.command = command.rawValue
            self.payload = payload
        }

        public init(command: UInt8, payload: [UInt8]) {
            self.command = command
            self.payload = payload
        }

        /// The frame's bytes: length, command, payload.
        public var bytes: [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(5 + payload.count)
            appendUInt32(UInt32(payload.count + 1), to: &out)
            out.append(command)
            out += payload
            return out
        }
    }

    public enum DecodeError: Error, Equatable, CustomStringConvertible {
        case tooLarge(Int)
        case malformed(String)

        public var description: String {
            switch self {
            case .tooLarge(let length): "a pilot-daemon frame of \(length) bytes exceeds the 1 MiB limit"
            case .malformed(let reason): "malformed pilot-daemon frame: \(reason)"
            }
        }
    }

    /// The first whole frame in `buffer` and the bytes it took; nil while incomplete. Zero-length
    /// frames (which the daemon ignores) are skipped.
    public static func decodeFrame(_ buffer: ArraySlice<UInt8>) throws(DecodeError) -> (frame: Frame, consumed: Int)? {
        var offset = buffer.startIndex
        while buffer.endIndex - offset >= 4 {
            let length = Int(readUInt32(buffer, at: offset))
            guard length <= maximumBody else { throw .tooLarge(length) }
            if length == 0 {
                offset += 4
                continue
            }
            guard buffer.endIndex - offset - 4 >= length else { return nil }
            let body = buffer[(offset + 4)..<(offset + 4 + length)]
            let frame = Frame(command: body[body.startIndex], payload: Array(body.dropFirst()))
            return (frame, offset + 4 + length - buffer.startIndex)
        }
        return nil
    }

    // MARK: - Addresses

    /// A Pilot virtual address: `N:NNNN.HHHH.LLLL` (network in decimal and hex, node id's high
    /// and low 16 bits in hex).
    public struct Address: Sendable, Hashable, CustomStringConvertible {
        public var network: UInt16
        public var node: UInt32

        public init(network: UInt16, node: UInt32) {
            self.network = network
            self.node = node
        }

        /// Parses the text form; nil when it is not one.
        public init?(_ text: some StringProtocol) {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let network = UInt16(parts[0]) else { return nil }
            let groups = parts[1].split(separator: ".", omittingEmptySubsequences: false)
            guard groups.count == 3, groups.allSatisfy({ $0.count == 4 }),
                let networkHex = UInt16(groups[0], radix: 16), networkHex == network,
                let high = UInt32(groups[1], radix: 16), let low = UInt32(groups[2], radix: 16)
            else { return nil }
            self.init(network: network, node: high << 16 | low)
        }

        public var description: String {
            func hex(_ value: UInt32) -> String {
                let digits = String(value, radix: 16, uppercase: true)
                return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
            }
            return "\(network):\(hex(UInt32(network))).\(hex(node >> 16)).\(hex(node & 0xFFFF))"
        }

        /// The 6 bytes on the wire.
        public var bytes: [UInt8] {
            var out: [UInt8] = [UInt8(network >> 8), UInt8(network & 0xFF)]
            appendUInt32(node, to: &out)
            return out
        }

        /// The address in 6 wire bytes; nil for any other length.
        public init?(bytes: [UInt8]) {
            guard bytes.count == 6 else { return nil }
            self.init(bytes[...])
        }

        init(_ bytes: ArraySlice<UInt8>) {
            let start = bytes.startIndex
            network = UInt16(bytes[start]) << 8 | UInt16(bytes[start + 1])
            node = readUInt32(bytes, at: start + 2)
        }
    }

    // MARK: - Requests

    public static func bind(port: UInt16) -> Frame { Frame(.bind, uint16(port)) }
    public static func unbind(port: UInt16) -> Frame { Frame(.unbind, uint16(port)) }
    public static func dial(_ address: Address, port: UInt16) -> Frame { Frame(.dial, address.bytes + uint16(port)) }
    public static func send(connection: UInt32, _ bytes: [UInt8]) -> Frame { Frame(.send, uint32(connection) + bytes) }
    public static func close(connection: UInt32) -> Frame { Frame(.close, uint32(connection)) }
    public static func sendTo(_ address: Address, port: UInt16, _ bytes: [UInt8], confirmed: Bool = false) -> Frame {
        Frame(confirmed ? .sendToConfirm : .sendTo, address.bytes + uint16(port) + bytes)
    }
    public static func resolve(hostname: String) -> Frame { Frame(.resolveHostname, Array(hostname.utf8)) }
    public static func handshake(_ kind: Handshake, node: UInt32? = nil, text: String = "", timeoutMilliseconds: UInt32? = nil) -> Frame {
        var payload: [UInt8] = [kind.rawValue]
        if let node { payload += uint32(node) }
        if let timeoutMilliseconds { payload += uint32(timeoutMilliseconds) }
        return Frame(.handshake, payload + Array(text.utf8))
    }

    // MARK: - Pushes and replies

    /// What the daemon sends without being asked, or a reply's meaning.
    public enum Event: Sendable, Hashable {
        /// A stream accepted on `port` (its data follows as `received`).
        case accepted(port: UInt16, connection: UInt32, from: Address, fromPort: UInt16)
        case received(connection: UInt32, bytes: [UInt8])
        case datagram(from: Address, fromPort: UInt16, toPort: UInt16, bytes: [UInt8])
        /// The stream ended (remote close, or the answer to our own close).
        case closed(connection: UInt32)
    }

    /// The push a frame carries, nil for a reply.
    public static func event(_ frame: Frame) throws(DecodeError) -> Event? {
        let p = frame.payload[...]
        switch Command(rawValue: frame.command) {
        case .accept:
            guard p.count == 14 else { throw .malformed("accept of \(p.count) bytes") }
            return .accepted(
                port: readUInt16(p, at: p.startIndex), connection: readUInt32(p, at: p.startIndex + 2),
                from: Address(p[(p.startIndex + 6)...]), fromPort: readUInt16(p, at: p.startIndex + 12))
        case .recv:
            guard p.count >= 4 else { throw .malformed("recv of \(p.count) bytes") }
            return .received(connection: readUInt32(p, at: p.startIndex), bytes: Array(p.dropFirst(4)))
        case .recvFrom:
            guard p.count >= 10 else { throw .malformed("recv-from of \(p.count) bytes") }
            return .datagram(
                from: Address(p), fromPort: readUInt16(p, at: p.startIndex + 6), toPort: readUInt16(p, at: p.startIndex + 8),
                bytes: Array(p.dropFirst(10)))
        case .closed:
            guard p.count == 4 else { throw .malformed("close of \(p.count) bytes") }
            return .closed(connection: readUInt32(p, at: p.startIndex))
        default:
            return nil
        }
    }

    /// The message of an `error` frame.
    public static func errorMessage(_ frame: Frame) -> String? {
        guard frame.command == Command.error.rawValue, frame.payload.count >= 2 else { return nil }
        return String(decoding: frame.payload.dropFirst(2), as: UTF8.self)
    }

    // MARK: - Integers

    static func uint16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
    static func uint32(_ value: UInt32) -> [UInt8] {
        var out: [UInt8] = []
        appendUInt32(value, to: &out)
        return out
    }
    static func appendUInt32(_ value: UInt32, to out: inout [UInt8]) {
        out += [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }
    static func readUInt16(_ bytes: ArraySlice<UInt8>, at index: Int) -> UInt16 {
        UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1])
    }
    static func readUInt32(_ bytes: ArraySlice<UInt8>, at index: Int) -> UInt32 {
        (index..<index + 4).reduce(UInt32(0)) { $0 << 8 | UInt32(bytes[$1]) }
    }
}
