import RumorCore

/// Serf's messages on the wire (docs/serf-wire.md §0–8): a type byte, then a msgpack map whose
/// keys are Go field names in byte order, strings and byte strings as msgpack "raw", nil for an
/// empty payload — byte for byte what Serf's go-msgpack handle writes. Decoding is liberal as
/// Serf's is: unknown keys skipped, missing ones zero, any integer width, str8/bin for bytes.
public enum SerfCodec {
    public enum MessageType: UInt8, Sendable {
        case leave = 0, join, pushPull, userEvent, query, queryResponse, conflictResponse, keyRequest, keyResponse, relay
    }

    /// The first byte of Serf's tags in memberlist metadata (protocol ≥ 3).
    public static let tagsMagic: UInt8 = NodeTags.serfMagic
    /// Tag filters and node filters inside a query's `Filters`.
    static let nodeFilter: UInt8 = 0
    static let tagFilter: UInt8 = 1

    /// Whether a memberlist user message carries a Serf message (its first byte is a Serf type
    /// that travels by gossip or directly).
    public static func isMessage(_ payload: [UInt8]) -> Bool {
        guard let first = payload.first, let type = MessageType(rawValue: first) else { return false }
        switch type {
        case .leave, .join, .userEvent, .query, .queryResponse, .relay: return true
        case .pushPull, .conflictResponse, .keyRequest, .keyResponse: return false
        }
    }

    // MARK: - Encoding

    public static func encode(_ message: SerfMessage) -> [UInt8] {
        var writer = MessagePackWriter(reservingCapacity: 96)
        switch message {
        case .leave(let leave):
            writer.writeByte(MessageType.leave.rawValue)
            writer.writeMapHeader(3)
            writer.writeKey("LTime"); writer.writeUnsigned(leave.time)
            writer.writeKey("Node"); writer.writeString(leave.node)
            writer.writeKey("Prune"); writer.writeBool(leave.prune)
        case .join(let join):
            writer.writeByte(MessageType.join.rawValue)
            writer.writeMapHeader(2)
            writer.writeKey("LTime"); writer.writeUnsigned(join.time)
            writer.writeKey("Node"); writer.writeString(join.node)
        case .pushPull(let state):
            writer.writeByte(MessageType.pushPull.rawValue)
            writePushPull(state, to: &writer)
        case .userEvent(let event):
            writer.writeByte(MessageType.userEvent.rawValue)
            writer.writeMapHeader(4)
            writer.writeKey("CC"); writer.writeBool(event.coalesce)
            writer.writeKey("LTime"); writer.writeUnsigned(event.time)
            writer.writeKey("Name"); writer.writeString(event.name)
            writer.writeKey("Payload"); writer.writeRawOrNil(event.payload)
        case .query(let query):
            writer.writeByte(MessageType.query.rawValue)
            writer.writeMapHeader(11)
            writer.writeKey("Addr"); writer.writeRaw(query.address)
            writer.writeKey("Filters")
            if query.filters.isEmpty {
                writer.writeByte(0xc0)
            } else {
                writer.writeArrayHeader(query.filters.count)
                for filter in query.filters { writer.writeRaw(encode(filter)) }
            }
            writer.writeKey("Flags"); writer.writeUnsigned(UInt64(query.flags))
            writer.writeKey("ID"); writer.writeUnsigned(UInt64(query.id))
            writer.writeKey("LTime"); writer.writeUnsigned(query.time)
            writer.writeKey("Name"); writer.writeString(query.name)
            writer.writeKey("Payload"); writer.writeRawOrNil(query.payload)
            writer.writeKey("Port"); writer.writeUnsigned(UInt64(query.port))
            writer.writeKey("RelayFactor"); writer.writeUnsigned(UInt64(query.relayFactor))
            writer.writeKey("SourceNode"); writer.writeString(query.sourceNode)
            writer.writeKey("Timeout"); writer.writeSigned(query.timeout.nanosecondsClamped)
        case .queryResponse(let response):
            writer.writeByte(MessageType.queryResponse.rawValue)
            writer.writeMapHeader(5)
            writer.writeKey("Flags"); writer.writeUnsigned(response.isAck ? 1 : 0)
            writer.writeKey("From"); writer.writeString(response.from)
            writer.writeKey("ID"); writer.writeUnsigned(UInt64(response.id))
            writer.writeKey("LTime"); writer.writeUnsigned(response.time)
            writer.writeKey("Payload"); writer.writeRawOrNil(response.payload)
        case .relay(let relay):
            writer.writeByte(MessageType.relay.rawValue)
            writer.writeMapHeader(2)
            writer.writeKey("DestAddr")
            writer.writeMapHeader(3)
            writer.writeKey("IP"); writer.writeRaw(relay.destination.ip)
            writer.writeKey("Port"); writer.writeUnsigned(UInt64(relay.destination.port))
            writer.writeKey("Zone"); writer.writeString("")
            writer.writeKey("DestName"); writer.writeString(relay.destinationName)
            return writer.bytes + relay.message
        }
        return writer.bytes
    }

    /// One filter: its type byte and msgpack body. Never empty (an empty filter crashes Serf).
    public static func encode(_ filter: SerfFilter) -> [UInt8] {
        var writer = MessagePackWriter()
        switch filter {
        case .nodes(let names):
            writer.writeByte(nodeFilter)
            writer.writeArrayHeader(names.count)
            for name in names { writer.writeString(name) }
        case .tag(let name, let expression):
            writer.writeByte(tagFilter)
            writer.writeMapHeader(2)
            writer.writeKey("Expr"); writer.writeString(expression)
            writer.writeKey("Tag"); writer.writeString(name)
        }
        return writer.bytes
    }

    private static func writePushPull(_ state: SerfPushPull, to writer: inout MessagePackWriter) {
        writer.writeMapHeader(6)
        writer.writeKey("EventLTime"); writer.writeUnsigned(state.eventTime)
        writer.writeKey("Events")
        writer.writeArrayHeader(state.events.count)
        for slot in state.events {
            guard let slot else {
                writer.writeByte(0xc0)
                continue
            }
            writer.writeMapHeader(2)
            writer.writeKey("Events")
            writer.writeArrayHeader(slot.events.count)
            for event in slot.events {
                writer.writeMapHeader(2)
                writer.writeKey("Name"); writer.writeString(event.name)
                writer.writeKey("Payload"); writer.writeRawOrNil(event.payload)
            }
            writer.writeKey("LTime"); writer.writeUnsigned(slot.time)
        }
        writer.writeKey("LTime"); writer.writeUnsigned(state.memberTime)
        writer.writeKey("LeftMembers")
        writer.writeArrayHeader(state.leftMembers.count)
        for name in state.leftMembers { writer.writeString(name) }
        writer.writeKey("QueryLTime"); writer.writeUnsigned(state.queryTime)
        writer.writeKey("StatusLTimes")
        writer.writeMapHeader(state.statusTimes.count)
        for (name, time) in state.statusTimes.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
            writer.writeString(name)
            writer.writeUnsigned(time)
        }
    }

    /// Tags as Serf puts them in memberlist metadata (`NodeTags`, Serf format).
    public static func encodeTags(_ tags: [String: String]) -> [UInt8] {
        NodeTags.encode(tags, as: .serf)
    }

    /// The payload of a key query (`0x07`) or of a node's answer to one (`0x08`).
    public static func encode(_ message: SerfKeyMessage) -> [UInt8] {
        var writer = MessagePackWriter()
        switch message {
        case .request(let key):
            writer.writeByte(MessageType.keyRequest.rawValue)
            writer.writeMapHeader(1)
            writer.writeKey("Key"); writer.writeRaw(key)
        case .response(let response):
            writer.writeByte(MessageType.keyResponse.rawValue)
            writer.writeMapHeader(4)
            writer.writeKey("Keys")
            if response.keys.isEmpty {
                writer.writeByte(0xc0)
            } else {
                writer.writeArrayHeader(response.keys.count)
                for key in response.keys { writer.writeString(key) }
            }
            writer.writeKey("Message"); writer.writeString(response.message)
            writer.writeKey("PrimaryKey"); writer.writeString(response.primaryKey)
            writer.writeKey("Result"); writer.writeBool(response.succeeded)
        }
        return writer.bytes
    }

    // MARK: - Decoding

    /// Decodes one Serf message (type byte and body).
    /// - Throws: `WireError` for an unknown type, a malformed body, or a relay without a message.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> SerfMessage {
        guard let first = bytes.first else { throw WireError(.malformed, "an empty Serf message") }
        guard let type = MessageType(rawValue: first) else {
            throw WireError(.malformed, "unknown Serf message type \(first)")
        }
        var reader = MessagePackReader(bytes, offset: 1)
        switch type {
        case .leave:
            var leave = SerfLeave(time: 0, node: "")
            try reader.readMap { reader, key throws(WireError) in
                switch key {
                case "LTime": leave.time = try reader.readUnsigned()
                case "Node": leave.node = try reader.readString()
                case "Prune": leave.prune = try reader.readBool()
                default: return false
                }
                return true
            }
            return .leave(leave)
        case .join:
            var join = SerfJoin(time: 0, node: "")
            try reader.readMap { reader, key throws(WireError) in
                switch key {
                case "LTime": join.time = try reader.readUnsigned()
                case "Node": join.node = try reader.readString()
                default: return false
                }
                return true
            }
            return .join(join)
        case .pushPull:
            return .pushPull(try readPushPull(&reader))
        case .userEvent:
            var event = SerfUserEvent(time: 0, name: "", payload: [], coalesce: false)
            try reader.readMap { reader, key throws(WireError) in
                switch key {
                case "CC": event.coalesce = try reader.readBool()
                case "LTime": event.time = try reader.readUnsigned()
                case "Name": event.name = try reader.readString()
                case "Payload": event.payload = try reader.readBytes()
                default: return false
                }
                return true
            }
            return .userEvent(event)
        case .query:
            return .query(try readQuery(&reader))
        case .queryResponse:
            var response = SerfQueryResponse(time: 0, id: 0, from: "", isAck: false)
            try reader.readMap { reader, key throws(WireError) in
                switch key {
                case "Flags": response.isAck = try reader.readInteger(as: UInt32.self) & 1 != 0
                case "From": response.from = try reader.readString()
                case "ID": response.id = try reader.readInteger(as: UInt32.self)
                case "LTime": response.time = try reader.readUnsigned()
                case "Payload": response.payload = try reader.readBytes()
                default: return false
                }
                return true
            }
            return .queryResponse(response)
        case .relay:
            var destination = NodeAddress(ip: [], port: 0)
            var name = ""
            try reader.readMap { reader, key throws(WireError) in
                switch key {
                case "DestAddr":
                    try reader.readMap { reader, key throws(WireError) in
                        switch key {
                        case "IP": destination.ip = try reader.readBytes()
                        case "Port": destination.port = try reader.readInteger(as: UInt16.self)
                        default: return false
                        }
                        return true
                    }
                case "DestName": name = try reader.readString()
                default: return false
                }
                return true
            }
            guard reader.remaining > 0 else { throw WireError(.malformed, "a Serf relay without a message") }
            return .relay(SerfRelay(destination: destination, destinationName: name, message: Array(bytes[reader.offset...])))
        case .conflictResponse, .keyRequest, .keyResponse:
            throw WireError(.malformed, "Serf message type \(first) travels only inside a query payload")
        }
    }

    private static func readQuery(_ reader: inout MessagePackReader) throws(WireError) -> SerfQuery {
        var query = SerfQuery(time: 0, id: 0, address: [], port: 0, sourceNode: "", timeout: .zero, name: "")
        try reader.readMap { reader, key throws(WireError) in
            switch key {
            case "Addr": query.address = try reader.readBytes()
            case "Filters":
                if try reader.readNil() { return true }
                let count = try reader.readArrayHeader()
                guard count <= reader.remaining else { throw WireError(.truncated, "\(count) filters") }
                for _ in 0..<count { query.filters.append(try decodeFilter(try reader.readBytes())) }
            case "Flags": query.flags = try reader.readInteger(as: UInt32.self)
            case "ID": query.id = try reader.readInteger(as: UInt32.self)
            case "LTime": query.time = try reader.readUnsigned()
            case "Name": query.name = try reader.readString()
            case "Payload": query.payload = try reader.readBytes()
            case "Port": query.port = try reader.readInteger(as: UInt16.self)
            case "RelayFactor": query.relayFactor = try reader.readInteger(as: UInt8.self)
            case "SourceNode": query.sourceNode = try reader.readString()
            case "Timeout": query.timeout = .nanoseconds(try reader.readInteger())
            default: return false
            }
            return true
        }
        return query
    }

    /// One filter of a query. An unknown filter type is an error: a node must not answer a
    /// query whose conditions it cannot check.
    public static func decodeFilter(_ bytes: [UInt8]) throws(WireError) -> SerfFilter {
        guard let type = bytes.first else { throw WireError(.malformed, "an empty Serf filter") }
        var reader = MessagePackReader(bytes, offset: 1)
        switch type {
        case nodeFilter:
            let count = try reader.readArrayHeader()
            guard count <= reader.remaining else { throw WireError(.truncated, "\(count) node names") }
            var names: [String] = []
            for _ in 0..<count { names.append(try reader.readString()) }
            return .nodes(names)
        case tagFilter:
            var name = ""
            var expression = ""
            try reader.readMap { reader, key throws(WireError) in
                switch key {
                case "Expr": expression = try reader.readString()
                case "Tag": name = try reader.readString()
                default: return false
                }
                return true
            }
            return .tag(name: name, expression: expression)
        default:
            throw WireError(.malformed, "unknown Serf filter type \(type)")
        }
    }

    private static func readPushPull(_ reader: inout MessagePackReader) throws(WireError) -> SerfPushPull {
        var state = SerfPushPull(memberTime: 0, statusTimes: [:], leftMembers: [], eventTime: 0, events: [], queryTime: 0)
        try reader.readMap { reader, key throws(WireError) in
            switch key {
            case "EventLTime": state.eventTime = try reader.readUnsigned()
            case "Events":
                if try reader.readNil() { return true }
                let count = try reader.readArrayHeader()
                guard count <= reader.remaining else { throw WireError(.truncated, "\(count) event slots") }
                for _ in 0..<count {
                    if try reader.readNil() {
                        state.events.append(nil)
                        continue
                    }
                    var slot = SerfEventSlot(time: 0, events: [])
                    try reader.readMap { reader, key throws(WireError) in
                        switch key {
                        case "LTime": slot.time = try reader.readUnsigned()
                        case "Events":
                            if try reader.readNil() { return true }
                            let events = try reader.readArrayHeader()
                            guard events <= reader.remaining else { throw WireError(.truncated, "\(events) events") }
                            for _ in 0..<events {
                                var event = SerfEventSlot.Event(name: "", payload: [])
                                try reader.readMap { reader, key throws(WireError) in
                                    switch key {
                                    case "Name": event.name = try reader.readString()
                                    case "Payload": event.payload = try reader.readBytes()
                                    default: return false
                                    }
                                    return true
                                }
                                slot.events.append(event)
                            }
                        default: return false
                        }
                        return true
                    }
                    state.events.append(slot)
                }
            case "LTime": state.memberTime = try reader.readUnsigned()
            case "LeftMembers":
                if try reader.readNil() { return true }
                let count = try reader.readArrayHeader()
                guard count <= reader.remaining else { throw WireError(.truncated, "\(count) left members") }
                for _ in 0..<count { state.leftMembers.append(try reader.readString()) }
            case "QueryLTime": state.queryTime = try reader.readUnsigned()
            case "StatusLTimes":
                if try reader.readNil() { return true }
                let count = try reader.readMapHeader()
                guard count <= reader.remaining else { throw WireError(.truncated, "\(count) status times") }
                for _ in 0..<count {
                    let name = try reader.readString()
                    state.statusTimes[name] = try reader.readUnsigned()
                }
            default: return false
            }
            return true
        }
        return state
    }

    /// Serf tags from memberlist metadata, as Serf reads them: the magic byte and a map, or
    /// (anything else, empty included) the whole metadata as the `role` tag.
    /// - Throws: `WireError` when the metadata starts with the magic byte but is not a map of
    ///   strings.
    public static func decodeTags(_ meta: [UInt8]) throws(WireError) -> [String: String] {
        guard meta.first == tagsMagic else { return ["role": String(decoding: meta, as: UTF8.self)] }
        guard let tags = NodeTags.decode(meta) else { throw WireError(.malformed, "Serf tags that are not a map of strings") }
        return tags
    }

    /// A key query's payload, or a node's answer to one.
    public static func decodeKeyMessage(_ bytes: [UInt8]) throws(WireError) -> SerfKeyMessage {
        guard let first = bytes.first else { throw WireError(.malformed, "an empty Serf key message") }
        var reader = MessagePackReader(bytes, offset: 1)
        switch MessageType(rawValue: first) {
        case .keyRequest:
            var key: [UInt8] = []
            try reader.readMap { reader, name throws(WireError) in
                guard name == "Key" else { return false }
                key = try reader.readBytes()
                return true
            }
            return .request(key: key)
        case .keyResponse:
            var response = SerfKeyResponse(succeeded: false)
            try reader.readMap { reader, key throws(WireError) in
                switch key {
                case "Keys":
                    if try reader.readNil() { return true }
                    let count = try reader.readArrayHeader()
                    guard count <= reader.remaining else { throw WireError(.truncated, "\(count) keys") }
                    for _ in 0..<count { response.keys.append(try reader.readString()) }
                case "Message": response.message = try reader.readString()
                case "PrimaryKey": response.primaryKey = try reader.readString()
                case "Result": response.succeeded = try reader.readBool()
                default: return false
                }
                return true
            }
            return .response(response)
        default:
            throw WireError(.malformed, "not a Serf key message (type \(first))")
        }
    }
}

extension MessagePackWriter {
    mutating func writeArrayHeader(_ count: Int) {
        if count < 16 {
            writeByte(0x90 | UInt8(count))
        } else if count < 65_536 {
            writeByte(0xdc)
            writeBigEndian(UInt16(count))
        } else {
            writeByte(0xdd)
            writeBigEndian(UInt32(count))
        }
    }
}

extension MessagePackReader {
    /// Consumes a nil and returns true, or leaves anything else unread and returns false.
    mutating func readNil() throws(WireError) -> Bool {
        guard remaining > 0 else { throw WireError(.truncated, "expected a value") }
        guard bytes[offset] == 0xc0 else { return false }
        _ = try readByte()
        return true
    }

    /// An unsigned integer of any width (Lamport times).
    mutating func readUnsigned() throws(WireError) -> UInt64 {
        let value = try readInteger()
        guard value >= 0 else { throw WireError(.malformed, "a negative Lamport time") }
        return UInt64(value)
    }
}
