/// Upper bounds of the encoded size of messages, so packets can be filled with gossip without
/// the core ever seeing bytes. Mirrors memberlist's msgpack encoding: a type byte, then a map of
/// field names to values.
extension Message {
    /// An upper bound of this message's encoded size in bytes, type byte included.
    public var estimatedWireSize: Int {
        switch self {
        case .ping(let ping):
            var size = 1 + Size.map + Size.field("SeqNo", Size.uint32) + Size.field("Node", Size.raw(ping.target.utf8.count))
            if let source = ping.source {
                size += Size.field("SourceAddr", Size.raw(source.ipLength)) + Size.field("SourcePort", Size.uint16)
            }
            if !ping.sourceName.isEmpty { size += Size.field("SourceNode", Size.raw(ping.sourceName.utf8.count)) }
            return size
        case .indirectPing(let request):
            var size = 1 + Size.map + Size.field("SeqNo", Size.uint32)
                + Size.field("Target", Size.raw(request.target.ipLength)) + Size.field("Port", Size.uint16)
                + Size.field("Node", Size.raw(request.targetName.utf8.count)) + Size.field("Nack", 1)
            if let source = request.source {
                size += Size.field("SourceAddr", Size.raw(source.ipLength)) + Size.field("SourcePort", Size.uint16)
            }
            if !request.sourceName.isEmpty { size += Size.field("SourceNode", Size.raw(request.sourceName.utf8.count)) }
            return size
        case .ack(let ack):
            return 1 + Size.map + Size.field("SeqNo", Size.uint32) + Size.field("Payload", Size.raw(ack.payload.count))
        case .nack:
            return 1 + Size.map + Size.field("SeqNo", Size.uint32)
        case .suspect(let suspect):
            return 1 + Size.map + Size.field("Incarnation", Size.uint32)
                + Size.field("Node", Size.raw(suspect.node.utf8.count)) + Size.field("From", Size.raw(suspect.from.utf8.count))
        case .dead(let dead):
            return 1 + Size.map + Size.field("Incarnation", Size.uint32)
                + Size.field("Node", Size.raw(dead.node.utf8.count)) + Size.field("From", Size.raw(dead.from.utf8.count))
        case .alive(let alive):
            return 1 + Size.map + Size.field("Incarnation", Size.uint32)
                + Size.field("Node", Size.raw(alive.node.utf8.count)) + Size.field("Addr", Size.raw(alive.address.ipLength))
                + Size.field("Port", Size.uint16) + Size.field("Meta", Size.raw(alive.meta.count))
                + Size.field("Vsn", Size.array + 6 * 2)
        case .user(let bytes):
            return 1 + bytes.count
        case .error(let text):
            return 1 + Size.map + Size.field("Error", Size.raw(text.utf8.count))
        }
    }
}

private enum Size {
    static let map = 3
    static let array = 3
    static let uint32 = 5
    static let uint16 = 3

    static func raw(_ length: Int) -> Int {
        length + (length < 32 ? 1 : length < 65_536 ? 3 : 5)
    }

    static func field(_ name: String, _ value: Int) -> Int {
        raw(name.utf8.count) + value
    }
}
