/// HashiCorp Serf's messages (docs/serf-wire.md), which ride inside memberlist user messages:
/// one type byte, then a msgpack map. These are domain values; `RumorWire.SerfCodec` maps them
/// to and from bytes exactly as Serf 0.9.4 (the Debian package that prints 0.8.2-dev) does.
public enum SerfMessage: Sendable, Hashable {
    case leave(SerfLeave)
    case join(SerfJoin)
    case pushPull(SerfPushPull)
    case userEvent(SerfUserEvent)
    case query(SerfQuery)
    case queryResponse(SerfQueryResponse)
    case relay(SerfRelay)
}

/// A Lamport time: a `uint64` counter (Serf keeps three, for member intents, user events and
/// queries).
public typealias LamportTime = UInt64

/// A node's intent to join, gossiped by the joiner (and to refute a leave about itself).
public struct SerfJoin: Sendable, Hashable {
    public var time: LamportTime
    public var node: String

    public init(time: LamportTime, node: String) {
        self.time = time
        self.node = node
    }
}

/// A node's intent to leave (its own, or a force-leave about it).
public struct SerfLeave: Sendable, Hashable {
    public var time: LamportTime
    public var node: String
    /// Erase the member at once (`force-leave -prune`).
    public var prune: Bool

    public init(time: LamportTime, node: String, prune: Bool = false) {
        self.time = time
        self.node = node
        self.prune = prune
    }
}

/// A user event: a name and an opaque payload, delivered once to every node.
public struct SerfUserEvent: Sendable, Hashable {
    public var time: LamportTime
    public var name: String
    public var payload: [UInt8]
    /// Whether receivers may coalesce it with later events of the same name.
    public var coalesce: Bool

    public init(time: LamportTime, name: String, payload: [UInt8], coalesce: Bool) {
        self.time = time
        self.name = name
        self.payload = payload
        self.coalesce = coalesce
    }
}

/// A condition a node must meet to answer a query: all of a query's filters must pass.
public enum SerfFilter: Sendable, Hashable {
    /// The node's name is one of these.
    case nodes([String])
    /// The tag's value (`""` when absent) matches the regular expression (unanchored, RE2).
    case tag(name: String, expression: String)
}

/// A query: gossiped to every node; those that pass its filters acknowledge (if asked) and
/// answer to the originator's address directly.
public struct SerfQuery: Sendable, Hashable {
    public var time: LamportTime
    public var id: UInt32
    /// Where acknowledgements and responses go: the originator's memberlist address and port.
    public var address: [UInt8]
    public var port: UInt16
    /// The originator's node name (Serf ≥ 0.9; empty from older nodes).
    public var sourceNode: String
    public var filters: [SerfFilter]
    /// Bit 0: acknowledgements wanted; bit 1: do not rebroadcast.
    public var flags: UInt32
    /// How many extra copies of each answer to send through other nodes.
    public var relayFactor: UInt8
    /// How long after receipt an answer may still be sent.
    public var timeout: Duration
    public var name: String
    public var payload: [UInt8]

    public static let ackFlag: UInt32 = 1
    public static let noBroadcastFlag: UInt32 = 2

    public init(
        time: LamportTime, id: UInt32, address: [UInt8], port: UInt16, sourceNode: String, filters: [SerfFilter] = [],
        flags: UInt32 = 0, relayFactor: UInt8 = 0, timeout: Duration, name: String, payload: [UInt8] = []
    ) {
        self.time = time
        self.id = id
        self.address = address
        self.port = port
        self.sourceNode = sourceNode
        self.filters = filters
        self.flags = flags
        self.relayFactor = relayFactor
        self.timeout = timeout
        self.name = name
        self.payload = payload
    }

    public var wantsAck: Bool { flags & Self.ackFlag != 0 }
    public var rebroadcasts: Bool { flags & Self.noBroadcastFlag == 0 }
}

/// An acknowledgement (`isAck`) or a response to a query, sent to its originator.
public struct SerfQueryResponse: Sendable, Hashable {
    public var time: LamportTime
    public var id: UInt32
    public var from: String
    public var isAck: Bool
    public var payload: [UInt8]

    public init(time: LamportTime, id: UInt32, from: String, isAck: Bool, payload: [UInt8] = []) {
        self.time = time
        self.id = id
        self.from = from
        self.isAck = isAck
        self.payload = payload
    }
}

/// A message another node should forward, unread, to `destination` (relayed query answers).
public struct SerfRelay: Sendable, Hashable {
    public var destination: NodeAddress
    public var destinationName: String
    /// The Serf message to forward: its type byte and body.
    public var message: [UInt8]

    public init(destination: NodeAddress, destinationName: String, message: [UInt8]) {
        self.destination = destination
        self.destinationName = destinationName
        self.message = message
    }
}

/// Serf's push-pull state: its clocks, every member's intent time, the members that left, and
/// the recent user events.
public struct SerfPushPull: Sendable, Hashable {
    public var memberTime: LamportTime
    public var statusTimes: [String: LamportTime]
    public var leftMembers: [String]
    public var eventTime: LamportTime
    /// The recent-event ring: slot `i` holds the events of one time with `time % count == i`.
    public var events: [SerfEventSlot?]
    public var queryTime: LamportTime

    public init(
        memberTime: LamportTime, statusTimes: [String: LamportTime], leftMembers: [String], eventTime: LamportTime,
        events: [SerfEventSlot?], queryTime: LamportTime
    ) {
        self.memberTime = memberTime
        self.statusTimes = statusTimes
        self.leftMembers = leftMembers
        self.eventTime = eventTime
        self.events = events
        self.queryTime = queryTime
    }
}

/// The user events of one Lamport time in the recent-event ring.
public struct SerfEventSlot: Sendable, Hashable {
    public var time: LamportTime
    public var events: [SerfEventSlot.Event]

    public struct Event: Sendable, Hashable {
        public var name: String
        public var payload: [UInt8]

        public init(name: String, payload: [UInt8]) {
            self.name = name
            self.payload = payload
        }
    }

    public init(time: LamportTime, events: [SerfEventSlot.Event]) {
        self.time = time
        self.events = events
    }
}

/// The payloads of Serf's internal key queries (`_serf_install-key` and friends).
public enum SerfKeyMessage: Sendable, Hashable {
    /// The key to install, use or remove (empty to list).
    case request(key: [UInt8])
    /// A node's answer: its keys (base64) and primary key for a list, or its error.
    case response(SerfKeyResponse)
}

public struct SerfKeyResponse: Sendable, Hashable {
    public var succeeded: Bool
    public var message: String
    public var keys: [String]
    public var primaryKey: String

    public init(succeeded: Bool, message: String = "", keys: [String] = [], primaryKey: String = "") {
        self.succeeded = succeeded
        self.message = message
        self.keys = keys
        self.primaryKey = primaryKey
    }
}
