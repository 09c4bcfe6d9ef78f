import RumorAPI

/// The JSON Schemas (2020-12, as OpenAPI 3.1 uses) of the API's bodies: the request bodies of
/// `APIRequestBodies.swift` and the answers of `AgentControl.swift`, property for property.
///
/// Answers are closed (`additionalProperties: false`), so the end-to-end test that checks live
/// answers against them fails when a field is added to a Swift type and not here.
enum APISchemas {
    static func reference(_ name: String) -> JSONValue { ["$ref": .string("#/components/schemas/\(name)")] }

    static func string(_ description: String) -> JSONValue { ["type": "string", "description": .string(description)] }
    static func integer(_ description: String) -> JSONValue { ["type": "integer", "minimum": 0, "description": .string(description)] }
    static func boolean(_ description: String) -> JSONValue { ["type": "boolean", "description": .string(description)] }
    static func number(_ description: String) -> JSONValue { ["type": "number", "description": .string(description)] }
    static func array(of items: JSONValue, _ description: String) -> JSONValue {
        ["type": "array", "items": items, "description": .string(description)]
    }
    static func map(of values: JSONValue, _ description: String) -> JSONValue {
        ["type": "object", "additionalProperties": values, "description": .string(description)]
    }
    static func choice(_ values: [String], _ description: String) -> JSONValue {
        ["type": "string", "enum": .array(values.map(JSONValue.string)), "description": .string(description)]
    }

    /// An object with these properties; `required` names those always present. `closed`: no others.
    static func object(
        _ description: String, _ properties: KeyValuePairs<String, JSONValue>, required: [String], closed: Bool = true
    ) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("type", "object"), ("description", .string(description)),
            ("properties", .object(properties.map { ($0.key, $0.value) })),
            ("required", .array(required.map(JSONValue.string))),
        ]
        if closed { members.append(("additionalProperties", false)) }
        return .object(members)
    }

    /// The success envelope around `data`.
    static func ok(_ data: JSONValue) -> JSONValue {
        object("Success envelope.", ["status": ["const": "ok"], "data": data], required: ["status", "data"])
    }

    /// Every named schema, for `components.schemas`.
    static let components: [(String, JSONValue)] = [
        ("Error", object(
            "Error envelope: every failure, with a stable code, what happened and what to do.",
            [
                "status": ["const": "error"],
                "code": choice(ErrorCode.allCases.map(\.rawValue), "Stable, snake case."),
                "message": string("What failed."),
                "hint": string("What to do about it."),
            ], required: ["status", "code", "message", "hint"])),
        ("Member", object(
            "One member as this node sees it.",
            [
                "name": string("Unique node name."),
                "address": string("host:port of the member's gossip socket."),
                "state": choice(["alive", "suspect", "dead", "left"], "SWIM state."),
                "incarnation": integer("The member's incarnation number."),
                "tags": map(of: ["type": "string"], "The member's tags (Serf's; rumor.kv=1 marks nodes that replicate state)."),
                "protocolVersion": integer("The memberlist protocol version the member speaks."),
                "clockOffsetMs": integer("The member's clock minus this node's, in ms (positive: ahead), as last measured; absent when not measured."),
                "clockOffsetErrorMs": integer("That measurement's error bound, in ms (half its round trip)."),
                "coordinate": reference("Coordinate"),
                "rttMs": number("The round trip from this node estimated from both coordinates, in ms (0 for this node); absent without a coordinate."),
            ], required: ["name", "address", "state", "incarnation", "tags", "protocolVersion"])),
        ("Coordinate", object(
            "A Vivaldi network coordinate (Serf's, lengths in seconds): the member's as its last ack to this node's probes carried it; absent until then and for plain memberlist nodes.",
            [
                "vec": array(of: ["type": "number"], "Position in Euclidean space, in seconds (8 dimensions)."),
                "error": number("Relative error the node believes its coordinate has (1.5 before any measurement)."),
                "adjustment": number("Added to every estimate from this node, in seconds."),
                "height": number("The node's own link, in seconds."),
            ], required: ["vec", "error", "adjustment", "height"])),
        ("NodeCoordinate", object(
            "One node's network coordinate, as this agent knows it.",
            ["node": string("The node's name."), "coordinate": reference("Coordinate")], required: ["node", "coordinate"])),
        ("RoundTripEstimate", object(
            "The round trip between two nodes estimated from their network coordinates (as serf rtt), not measured.",
            [
                "from": string("The first node."),
                "to": string("The second node."),
                "rttMs": number("The estimate, in ms."),
                "source": choice(["lan_coordinates"], "Where the estimate comes from."),
            ], required: ["from", "to", "rttMs", "source"])),
        ("Clock", object(
            "This node's clock as its peers see it: a node beyond maxOffsetMs from a majority of the peers it measured is fenced (it refuses local writes with clock_skew).",
            [
                "fenced": boolean("True while local writes are refused."),
                "offsetMs": integer("This node's clock minus the median measured peer's, in ms (positive: ahead); absent before any measurement."),
                "maxOffsetMs": integer("The bound (max_clock_offset)."),
                "measuredPeers": integer("Peers measured lately (at most 7 count)."),
                "peersNeededToFence": integer("How many of them must see this node beyond the bound, on one side, for a fence."),
                "text": string("One line, e.g. '12 ms ahead of the median peer (2 measured; the bound is 500 ms)'."),
            ], required: ["fenced", "maxOffsetMs", "measuredPeers", "peersNeededToFence", "text"])),
        ("Info", object(
            "A summary of the local node.",
            [
                "name": string("This node's name."),
                "address": string("host:port others reach this node at."),
                "swarm": string("The swarm name (empty for none)."),
                "members": map(of: ["type": "integer"], "Member counts by state."),
                "healthScore": integer("Lifeguard local health score: 0 is healthy."),
                "incarnation": integer("This node's incarnation number."),
                "left": boolean("True once the node has left."),
                "uptimeSeconds": number("Seconds since the agent started."),
                "encryption": choice(["off", "on", "sending-plaintext", "accepting-plaintext"], "Gossip encryption."),
                "counters": map(of: ["type": "integer", "minimum": 0], "Counters by name (also at /metrics)."),
                "clock": reference("Clock"),
            ],
            required: ["name", "address", "swarm", "members", "healthScore", "incarnation", "left", "uptimeSeconds", "encryption", "counters"])),
        ("Readiness", object(
            "Liveness and readiness: a node that joined peers is syncing until it has merged a complete answer from one (or waited readyTimeoutSeconds); reads answer 503 not_ready meanwhile, unless they pass stale=true.",
            [
                "ok": ["const": true],
                "node": string("This node's name."),
                "ready": boolean("True once reads are served."),
                "state": choice(["syncing", "ready"], "syncing until the first sync after the start."),
                "syncingSeconds": number("While syncing: for how long so far."),
                "readyTimeoutSeconds": number("The longest a node syncs before it is ready anyway (ready_timeout)."),
                "reason": string("Once ready: why, e.g. 'synced with n2 in 140 ms'."),
                "status": choice(["ok", "degraded"], "degraded while the node's clock is fenced (see clock); readiness is not affected."),
                "clock": reference("Clock"),
            ], required: ["ok", "node", "ready", "state", "readyTimeoutSeconds", "status"])),
        ("Entry", object(
            "One key-value entry.",
            [
                "key": string("The key."),
                "value": string("The value as UTF-8 text; absent for a delete or a value that is not UTF-8."),
                "valueBase64": string("The value in base64 when it is not UTF-8 text."),
                "deleted": boolean("True for a tombstone."),
                "timestamp": string("Hybrid logical clock timestamp of the write, milliseconds.logical."),
                "origin": string("The node that wrote it."),
                "expiresAt": integer("When the value expires, milliseconds since the epoch."),
                "ephemeral": boolean("True when the value lives only while its writer is in the swarm."),
                "replicas": array(of: ["type": "string"], "For a put with wait: the nodes known to hold it, the writer first."),
                "seq": integer("The key's position in this node's change log (list and watch)."),
                "change": choice(["put", "delete", "expire", "depart"], "In watch: what happened."),
                "epoch": string("In watch: the change log's epoch; seq orders changes only within one epoch (resume with from=seq&epoch=epoch)."),
            ], required: ["key", "deleted", "timestamp", "origin", "ephemeral"])),
        ("EntryList", object(
            "Live entries and the change-log position they reflect (watch from there to follow them).",
            [
                "entries": array(of: reference("Entry"), "Sorted by key."), "seq": integer("Change-log position."),
                "epoch": string("The change log's epoch (watch with from=seq&epoch=epoch)."),
            ],
            required: ["entries", "seq"])),
        ("StateStatus", object(
            "The replicated state at a glance.",
            [
                "values": integer("Keys with a live value."),
                "tombstones": integer("Deletes still remembered."),
                "digest": map(of: ["type": "string"], "Per writer (a node's process, name#generation), the timestamp up to which this node holds all its writes."),
                "lastSyncedMillisecondsAgo": integer("Milliseconds since the last anti-entropy exchange; absent if none yet."),
                "durable": boolean("Whether the state survives restarts (a data directory is set)."),
                "seq": integer("The newest change-log position."),
                "peers": map(of: ["$ref": "#/components/schemas/PeerSync"], "Per live replicating peer, how the states compared at the last exchange."),
                "catchUp": reference("CatchUp"),
            ], required: ["values", "tombstones", "digest", "durable", "seq", "peers"])),
        ("PeerSync", object(
            "How this node's state compared with a peer's at their last anti-entropy exchange, by state fingerprint.",
            [
                "state": ["type": "string", "enum": ["in_sync", "behind", "ahead", "never_synced"],
                    "description": "in_sync: the fingerprints matched; behind: the peer lacked `versions` of this node's writes; ahead: this node lacked some of the peer's; never_synced: no exchange with the peer's current process yet."],
                "versions": integer("Versions the peer lacked (behind)."),
                "millisecondsAgo": integer("Milliseconds since the exchange; absent when never synced."),
            ], required: ["state"])),
        ("CatchUp", object(
            "A catch-up under way: this node is behind by more than one message and gets the rest in pages.",
            [
                "peer": string("host:port of the peer sending the pages."),
                "pages": integer("Pages received."),
                "receivedEntries": integer("Entries received."),
                "receivedBytes": integer("Bytes of entries received."),
                "remainingEntries": integer("Entries still to come (the sender's estimate)."),
                "remainingBytes": integer("Bytes still to come (the sender's estimate)."),
                "progress": ["type": "number", "minimum": 0, "maximum": 1, "description": "Received over received plus remaining."],
                "elapsedSeconds": number("Since the catch-up began."),
            ],
            required: ["peer", "pages", "receivedEntries", "receivedBytes", "remainingEntries", "remainingBytes", "progress", "elapsedSeconds"])),
        ("KeyringReport", object(
            "Which gossip keys every live node holds.",
            [
                "nodes": integer("Live Rumor nodes asked, this one included."),
                "responded": integer("Nodes that answered."),
                "failures": map(of: ["type": "string"], "Per node that failed or did not answer, why."),
                "keys": map(of: ["type": "integer"], "Per installed key (base64), how many nodes hold it."),
                "primaryKeys": map(of: ["type": "integer"], "Per primary key (base64), how many nodes encrypt with it."),
            ], required: ["nodes", "responded", "failures", "keys", "primaryKeys"])),
        ("UserEvent", object(
            "A user event (Serf's), or a query this node received.",
            [
                "event": ["enum": ["user", "query"], "description": "Serf's event type."],
                "name": string("The event's name."),
                "payload": string("The payload as UTF-8 text."),
                "ltime": integer("The event's Lamport time."),
                "coalesce": ["type": "boolean", "description": "Whether receivers may coalesce it with later events of the same name."],
            ], required: ["event", "name", "payload", "ltime", "coalesce"])),
        ("EventRequest", object(
            "A user event to send.",
            [
                "name": string("The event's name."),
                "payload": string("The payload as text (name and payload: up to 512 bytes go to every node, Serf's limit; up to 1 MiB straight to the Rumor nodes)."),
                "coalesce": ["type": "boolean", "description": "Whether receivers may coalesce it; default false."],
                "nodes": array(of: ["type": "string"], "Only these Rumor nodes get it, straight (not gossiped)."),
            ], required: ["name"], closed: false)),
        ("QueryRequest", object(
            "A query to send (encoded: at most 1024 bytes, Serf's limit).",
            [
                "name": string("The query's name (not starting with _serf_)."),
                "payload": string("The payload as text."),
                "nodes": array(of: ["type": "string"], "Only these nodes answer."),
                "tags": array(of: ["type": "string"], "KEY=REGEX each: only nodes whose tag matches (unanchored) answer."),
                "timeoutSeconds": ["type": "number", "description": "How long answers are collected, in (0, 3600]; default: Serf's for the swarm's size."],
                "ack": ["type": "boolean", "description": "Whether nodes acknowledge receipt; default true."],
                "relayFactor": integer("Extra copies of each answer sent through other nodes, 0–5; default 0."),
            ], required: ["name"], closed: false)),
        ("QueryAnswer", object(
            "One line of a query's stream: dispatched first, then ack and response lines, done last.",
            [
                "type": ["enum": ["dispatched", "ack", "response", "done"], "description": "What the line is."],
                "name": string("dispatched: the query's name."),
                "ltime": integer("dispatched: the query's Lamport time."),
                "id": integer("dispatched: the query's ID."),
                "timeoutMilliseconds": integer("dispatched: how long answers are collected."),
                "ack": ["type": "boolean", "description": "dispatched: whether nodes were asked to acknowledge."],
                "from": string("ack, response: the answering node."),
                "payload": string("response: the answer as UTF-8 text."),
                "acks": integer("done: acknowledgements received."),
                "responses": integer("done: responses received."),
            ], required: ["type"])),
        ("TagsRequest", object(
            "Tags to set and to delete (at least one).",
            [
                "set": map(of: ["type": "string"], "Tags to add or change, KEY: VALUE."),
                "delete": array(of: ["type": "string"], "Tag names to remove."),
            ], required: [], closed: false)),
        ("JoinRequest", object(
            "Seeds to join through.",
            ["addresses": ["type": "array", "items": ["type": "string"], "minItems": 1, "description": "host:port; the port defaults to 7946."]],
            required: ["addresses"], closed: false)),
        ("PutRequest", object(
            "A write.",
            [
                "key": string("The key, 1 to 1,024 bytes by default."),
                "value": string("The value as text."),
                "ttlSeconds": ["type": "number", "exclusiveMinimum": 0, "description": "Time to live in seconds, at most ten years."],
                "ephemeral": boolean("True: the value vanishes when this node fails or leaves."),
                "wait": [
                    "oneOf": [["const": "all"], ["type": "integer", "minimum": 1], ["type": "string", "pattern": "^[1-9][0-9]*$"]],
                    "description": "Answer only once this many nodes (the writer included) hold the write: all, or a count.",
                ],
                "timeoutSeconds": ["type": "number", "exclusiveMinimum": 0, "maximum": 3600, "description": "How long wait may take; default 10."],
            ], required: ["key", "value"], closed: false)),
        ("BatchRequest", object(
            "Writes applied all or nothing.",
            [
                "entries": array(
                    of: object(
                        "One write; a null or absent value deletes the key.",
                        ["key": ["type": "string"], "value": ["type": ["string", "null"]]], required: ["key"], closed: false),
                    "The writes.")
            ], required: ["entries"], closed: false)),
        ("DeleteRequest", object(
            "A delete (a tombstone that replicates).",
            [
                "key": string("The key to delete."),
                "wait": [
                    "oneOf": [["const": "all"], ["type": "integer", "minimum": 1], ["type": "string", "pattern": "^[1-9][0-9]*$"]],
                    "description": "Answer only once this many nodes (the writer included) hold the delete: all, or a count.",
                ],
                "timeoutSeconds": ["type": "number", "exclusiveMinimum": 0, "maximum": 3600, "description": "How long wait may take; default 10."],
            ], required: ["key"], closed: false)),
        ("KeyringRequest", object(
            "A keyring change, run on every live node.",
            [
                "operation": choice(["install", "use", "remove"], "What to do with the key."),
                "key": string("The key in base64, as `rumor keygen` prints it."),
            ], required: ["operation", "key"], closed: false)),
    ]
}
