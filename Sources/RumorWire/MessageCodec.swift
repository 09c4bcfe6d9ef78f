import RumorCore

/// Encodes and decodes single memberlist messages: a type byte, then a msgpack map whose keys are
/// the Go struct field names of memberlist's `net.go`, in the sorted order go-msgpack 0.5 writes
/// them, with empty byte slices as nil as Go's nil slices are.
enum MessageCodec {
    static func encode(_ message: Message) -> [UInt8] {
        var writer = MessagePackWriter(reservingCapacity: message.estimatedWireSize)
        switch message {
        case .ping(let ping):
            writer.writeByte(MessageType.ping.rawValue)
            let hasSource = ping.source != nil
            writer.writeMapHeader(2 + (hasSource ? 2 : 0) + (ping.sourceName.isEmpty ? 0 : 1))
            writer.writeKey("Node"); writer.writeString(ping.target)
            writer.writeKey("SeqNo"); writer.writeUnsigned(UInt64(ping.sequenceNumber))
            writeSource(ping.source, name: ping.sourceName, into: &writer)
        case .indirectPing(let request):
            writer.writeByte(MessageType.indirectPing.rawValue)
            let hasSource = request.source != nil
            writer.writeMapHeader(5 + (hasSource ? 2 : 0) + (request.sourceName.isEmpty ? 0 : 1))
            writer.writeKey("Nack"); writer.writeBool(request.wantsNack)
            writer.writeKey("Node"); writer.writeString(request.targetName)
            writer.writeKey("Port"); writer.writeUnsigned(UInt64(request.target.port))
            writer.writeKey("SeqNo"); writer.writeUnsigned(UInt64(request.sequenceNumber))
            writeSource(request.source, name: request.sourceName, into: &writer)
            writer.writeKey("Target"); writer.writeRaw(request.target.ip)
        case .ack(let ack):
            writer.writeByte(MessageType.ack.rawValue)
            writer.writeMapHeader(2)
            writer.writeKey("Payload"); writer.writeRawOrNil(ack.payload)
            writer.writeKey("SeqNo"); writer.writeUnsigned(UInt64(ack.sequenceNumber))
        case .nack(let nack):
            writer.writeByte(MessageType.nack.rawValue)
            writer.writeMapHeader(1)
            writer.writeKey("SeqNo"); writer.writeUnsigned(UInt64(nack.sequenceNumber))
        case .suspect(let suspect):
            writer.writeByte(MessageType.suspect.rawValue)
            writeAccusation(suspect.incarnation, suspect.node, suspect.from, into: &writer)
        case .dead(let dead):
            writer.writeByte(MessageType.dead.rawValue)
            writeAccusation(dead.incarnation, dead.node, dead.from, into: &writer)
        case .alive(let alive):
            writer.writeByte(MessageType.alive.rawValue)
            writer.writeMapHeader(6)
            writer.writeKey("Addr"); writer.writeRaw(alive.address.ip)
            writer.writeKey("Incarnation"); writer.writeUnsigned(UInt64(alive.incarnation))
            writer.writeKey("Meta"); writer.writeRawOrNil(alive.meta)
            writer.writeKey("Node"); writer.writeString(alive.node)
            writer.writeKey("Port"); writer.writeUnsigned(UInt64(alive.address.port))
            writer.writeKey("Vsn"); writer.writeRaw(alive.versions.bytes)
        case .user(let payload):
            writer.writeByte(MessageType.user.rawValue)
            return writer.bytes + payload
        case .error(let text):
            writer.writeByte(MessageType.error.rawValue)
            writer.writeMapHeader(1)
            writer.writeKey("Error"); writer.writeString(text)
        }
        return writer.bytes
    }

    private static func writeSource(_ source: NodeAddress?, name: String, into writer: inout MessagePackWriter) {
        if let source { writer.writeKey("SourceAddr"); writer.writeRaw(source.ip) }
        if !name.isEmpty { writer.writeKey("SourceNode"); writer.writeString(name) }
        if let source { writer.writeKey("SourcePort"); writer.writeUnsigned(UInt64(source.port)) }
    }

    private static func writeAccusation(_ incarnation: UInt32, _ node: String, _ from: String, into writer: inout MessagePackWriter) {
        writer.writeMapHeader(3)
        writer.writeKey("From"); writer.writeString(from)
        writer.writeKey("Incarnation"); writer.writeUnsigned(UInt64(incarnation))
        writer.writeKey("Node"); writer.writeString(node)
    }

    /// Decodes one message whose type byte is `bytes[range.lowerBound]`.
    static func decode(_ bytes: [UInt8], _ range: Range<Int>) throws(WireError) -> Message {
        guard !range.isEmpty else { throw WireError(.truncated, "empty message") }
        let typeByte = bytes[range.lowerBound]
        guard let type = MessageType(rawValue: typeByte) else { throw WireError(.unknownMessageType(typeByte)) }
        var reader = MessagePackReader(bytes, offset: range.lowerBound + 1, end: range.upperBound)
        switch type {
        case .ping:
            var ping = Ping(sequenceNumber: 0, target: "")
            var source = SourceFields()
            try reader.readMap { reader, key throws(WireError) in
                switch key {
                case "SeqNo": ping.sequenceNumber = try reader.readInteger(as: UInt32.self)
                case "Node": ping.target = try reader.readString()
                default: return try source.read(key, from: &reader)
                }
                return true
            }
            ping.source = try source.address()
            ping.sourceName = source.name
            return .ping(ping)
        case .indirectPing:
            var sequence: UInt32 = 0
            var targetIP: [UInt8] = []
            var port: UInt16 = 0
            var name = ""
            var wantsNack = false
            var source = SourceFields()
            try reader.readMap { reader, key throws(WireError) in
                switch key {
                case "SeqNo": sequence = try reader.readInteger(as: UInt32.self)
                case "Target": targetIP = try reader.readBytes()
                case "Port": port = try reader.readInteger(as: UInt16.self)
                case "Node": name = try reader.readString()
                case "Nack": wantsNack = try reader.readBool()
                default: return try source.read(key, from: &reader)
                }
                return true
            }
            return .indirectPing(
                IndirectPing(
                    sequenceNumber: sequence, target: try address(targetIP, port), targetName: name, wantsNack: wantsNack,
                    source: try source.address(), sourceName: source.name))
        case .ack:
            var ack = Ack(sequenceNumber: 0)
            try reader.readMap { reader, key throws(WireError) in
                switch key {
                case "SeqNo": ack.sequenceNumber = try reader.readInteger(as: UInt32.self)
                case "Payload": ack.payload = try reader.readBytes()
                default: return false
                }
                return true
            }
            return .ack(ack)
        case .nack:
            var nack = Nack(sequenceNumber: 0)
            try reader.readMap { reader, key throws(WireError) in
                guard key == "SeqNo" else { return false }
                nack.sequenceNumber = try reader.readInteger(as: UInt32.self)
                return true
            }
            return .nack(nack)
        case .suspect:
            let (incarnation, node, from) = try readAccusation(&reader)
            return .suspect(Suspect(incarnation: incarnation, node: node, from: from))
        case .dead:
            let (incarnation, node, from) = try readAccusation(&reader)
            return .dead(Dead(incarnation: incarnation, node: node, from: from))
        case .alive:
            var incarnation: UInt32 = 0
            var node = ""
            var ip: [UInt8] = []
            var port: UInt16 = 0
            var meta: [UInt8] = []
            var versions: [UInt8] = []
            try reader.readMap { reader, key throws(WireError) in
                switch key {
                case "Incarnation": incarnation = try reader.readInteger(as: UInt32.self)
                case "Node": node = try reader.readString()
                case "Addr": ip = try reader.readBytes()
                case "Port": port = try reader.readInteger(as: UInt16.self)
                case "Meta": meta = try reader.readBytes()
                case "Vsn": versions = try reader.readBytes()
                default: return false
                }
                return true
            }
            guard !node.isEmpty else { throw WireError(.malformed, "alive without a node name") }
            return .alive(
                Alive(
                    incarnation: incarnation, node: node, address: try address(ip, port), meta: meta,
                    versions: ProtocolVersions(bytes: versions)))
        case .user:
            return .user(Array(bytes[(range.lowerBound + 1)..<range.upperBound]))
        case .error:
            var text = ""
            try reader.readMap { reader, key throws(WireError) in
                guard key == "Error" else { return false }
                text = try reader.readString()
                return true
            }
            return .error(text)
        case .pushPull, .compound, .compress, .encrypt, .hasCRC, .hasLabel:
            throw WireError(.malformed, "message type \(typeByte) cannot appear here")
        }
    }

    private static func readAccusation(_ reader: inout MessagePackReader) throws(WireError) -> (UInt32, String, String) {
        var incarnation: UInt32 = 0
        var node = ""
        var from = ""
        try reader.readMap { reader, key throws(WireError) in
            switch key {
            case "Incarnation": incarnation = try reader.readInteger(as: UInt32.self)
            case "Node": node = try reader.readString()
            case "From": from = try reader.readString()
            default: return false
            }
            return true
        }
        guard !node.isEmpty else { throw WireError(.malformed, "accusation without a node name") }
        return (incarnation, node, from)
    }

    static func address(_ ip: [UInt8], _ port: UInt16) throws(WireError) -> NodeAddress {
        guard NodeAddress.isValidLength(ip.count) else {
            throw WireError(.malformed, "address of \(ip.count) bytes (expected 4, 6 or 16)")
        }
        return NodeAddress(ip: ip, port: port)
    }

    /// The optional `SourceAddr`, `SourcePort`, `SourceNode` fields of pings.
    private struct SourceFields {
        var ip: [UInt8] = []
        var port: UInt16 = 0
        var name = ""

        mutating func read(_ key: String, from reader: inout MessagePackReader) throws(WireError) -> Bool {
            switch key {
            case "SourceAddr": ip = try reader.readBytes()
            case "SourcePort": port = try reader.readInteger(as: UInt16.self)
            case "SourceNode": name = try reader.readString()
            default: return false
            }
            return true
        }

        func address() throws(WireError) -> NodeAddress? {
            guard !ip.isEmpty else { return nil }
            return try MessageCodec.address(ip, port)
        }
    }
}

/// The exact encoded size of one message, type byte included.
public func encodedSize(of message: Message) -> Int {
    MessageCodec.encode(message).count
}
