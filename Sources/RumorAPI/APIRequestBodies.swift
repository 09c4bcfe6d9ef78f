import Foundation

// The JSON bodies of the local API's POST routes, as the CLI encodes them and the server decodes
// them (through `APIRequests`, which also validates them). The property names are the JSON
// field names: renaming one changes the wire format.

/// `POST /v1/join`: `{"addresses":["host:port",…]}`.
public struct JoinRequest: Codable, Sendable, Hashable {
    /// Seeds to contact, `host:port` (the port defaults to 7946). At least one.
    public var addresses: [String]

    public init(addresses: [String]) {
        self.addresses = addresses
    }
}

/// `POST /v1/kv/put`: `{"key","value","ttlSeconds"?,"ephemeral"?,"wait"?,"timeoutSeconds"?}`.
public struct PutRequest: Codable, Sendable, Hashable {
    public var key: String
    /// The value as text.
    public var value: String
    /// Time to live in seconds, in (0, ten years]; nil: none.
    public var ttlSeconds: Double?
    /// True: the value vanishes when this node fails or leaves. nil means false.
    public var ephemeral: Bool?
    /// How many nodes (the writer included) must hold the write before the answer: `all` or a
    /// positive count; nil: do not wait.
    public var wait: ReplicaCount?
    /// How long `wait` may take in seconds, in (0, 3600]; nil: 10.
    public var timeoutSeconds: Double?

    public init(
        key: String, value: String, ttlSeconds: Double? = nil, ephemeral: Bool? = nil, wait: ReplicaCount? = nil,
        timeoutSeconds: Double? = nil
    ) {
        self.key = key
        self.value = value
        self.ttlSeconds = ttlSeconds
        self.ephemeral = ephemeral
        self.wait = wait
        self.timeoutSeconds = timeoutSeconds
    }

    /// `wait` as sent: the text `"all"` or a count, accepted as a JSON string or number and
    /// encoded as a string. Not checked here: `APIRequests.put` parses it as a `ReplicaTarget`.
    public struct ReplicaCount: Codable, Sendable, Hashable {
        public var text: String

        public init(_ text: String) {
            self.text = text
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Int.self) {
                text = String(number)
            } else {
                text = try container.decode(String.self)
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(text)
        }
    }
}

/// `POST /v1/kv/batch`: `{"entries":[{"key","value"},…]}`, written all or nothing.
public struct BatchRequest: Codable, Sendable, Hashable {
    public var entries: [Entry]

    public init(entries: [Entry]) {
        self.entries = entries
    }

    public struct Entry: Codable, Sendable, Hashable {
        public var key: String
        /// The value as text; nil (null or absent) deletes the key.
        public var value: String?

        public init(key: String, value: String?) {
            self.key = key
            self.value = value
        }
    }
}

/// `POST /v1/kv/delete`: `{"key","wait"?,"timeoutSeconds"?}`.
public struct DeleteRequest: Codable, Sendable, Hashable {
    public var key: String
    /// As in `PutRequest`: how many nodes must hold the delete before the answer.
    public var wait: PutRequest.ReplicaCount?
    /// As in `PutRequest`: how long `wait` may take; nil: 10.
    public var timeoutSeconds: Double?

    public init(key: String, wait: PutRequest.ReplicaCount? = nil, timeoutSeconds: Double? = nil) {
        self.key = key
        self.wait = wait
        self.timeoutSeconds = timeoutSeconds
    }
}

/// `POST /v1/keys`: `{"operation":"install"|"use"|"remove","key":BASE64}`.
public struct KeyringRequest: Codable, Sendable, Hashable {
    /// `install`, `use` or `remove` (checked by `APIRequests.keyOperation`).
    public var operation: String
    /// The key in base64, as `rumor keygen` prints it.
    public var key: String

    public init(operation: String, key: String) {
        self.operation = operation
        self.key = key
    }
}

extension APIRequests {
    /// The JSON bytes of a request body, as the CLI sends them.
    /// - Throws: `EncodingError` for a value JSON cannot hold (a non-finite number).
    public static func encode(_ body: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(body))
    }
}

/// `POST /v1/tags`: `{"set":{"k":"v",…}?,"delete":["k",…]?}`: this node's tags, changed.
public struct TagsRequest: Codable, Sendable, Hashable {
    /// Tags to add or change.
    public var set: [String: String]?
    /// Tags to remove.
    public var delete: [String]?

    public init(set: [String: String]? = nil, delete: [String]? = nil) {
        self.set = set
        self.delete = delete
    }
}

/// `POST /v1/event`: `{"name","payload"?,"coalesce"?,"nodes"?}`: a Serf user event to every
/// node, or straight to the Rumor nodes named.
public struct EventRequest: Codable, Sendable, Hashable {
    public var name: String
    /// The payload as text; nil: none.
    public var payload: String?
    /// Whether receivers may coalesce it with later events of the same name; nil means false.
    public var coalesce: Bool?
    /// Only these Rumor nodes get it (straight, not gossiped); nil: every node.
    public var nodes: [String]?

    public init(name: String, payload: String? = nil, coalesce: Bool? = nil, nodes: [String]? = nil) {
        self.name = name
        self.payload = payload
        self.coalesce = coalesce
        self.nodes = nodes
    }
}

/// `POST /v1/query`: `{"name","payload"?,"nodes"?,"tags"?,"timeoutSeconds"?,"ack"?,"relayFactor"?}`:
/// a Serf query to every node that passes the filters.
public struct QueryRequest: Codable, Sendable, Hashable {
    public var name: String
    /// The payload as text; nil: none.
    public var payload: String?
    /// Only nodes with one of these names answer.
    public var nodes: [String]?
    /// `KEY=REGEX` each: only nodes whose tag KEY matches REGEX (unanchored, as Serf) answer.
    public var tags: [String]?
    /// How long answers are collected, in (0, 3600]; nil: Serf's default for the swarm's size.
    public var timeoutSeconds: Double?
    /// Whether nodes acknowledge receipt; nil means true.
    public var ack: Bool?
    /// Extra copies of each answer sent through other nodes (0–5); nil means 0.
    public var relayFactor: Int?

    public init(
        name: String, payload: String? = nil, nodes: [String]? = nil, tags: [String]? = nil, timeoutSeconds: Double? = nil,
        ack: Bool? = nil, relayFactor: Int? = nil
    ) {
        self.name = name
        self.payload = payload
        self.nodes = nodes
        self.tags = tags
        self.timeoutSeconds = timeoutSeconds
        self.ack = ack
        self.relayFactor = relayFactor
    }
}
