import RumorAPI
import RumorCore

/// One setting of `rumor agent`, under its three names: the config-file key (`data_dir`), the
/// flag (`--data-dir`) and the environment variable (`RUMOR_DATA_DIR`).
///
/// `AgentSetting.all` is the only list: the config-file reader refuses keys that are not in it,
/// `--print-config` prints it, docs/guide/cli.md and docs/guide/configuration.md document it.
public struct AgentSetting: Sendable {
    /// What a value of the setting is, which decides the type it must have in a config file.
    public enum Kind: Sendable {
        /// A string.
        case text
        /// A list of strings (TOML array; repeated flag; comma-separated variable).
        case list
        /// `true` or `false` (TOML boolean).
        case boolean
        /// A positive whole number (TOML integer).
        case count
        /// A duration such as `24h`, `30m`, `90s` (TOML string).
        case duration
        /// `KEY=VALUE` pairs (TOML table of strings; repeated `--tag k=v`; `k=v,k=v` variable).
        case pairs
    }

    /// The config-file key, snake case.
    public let key: String
    public let kind: Kind
    /// The value when nothing sets it; nil when there is none (or, for `name`, when it is the host name).
    public let defaultValue: SettingValue?
    /// What the setting does, one line.
    public let summary: String

    /// `--data-dir` for `data_dir` (`--tag` for `tags` and `--event-handler` for
    /// `event_handlers`: one item per flag, as Serf's `-tag` and `-event-handler`).
    public var flag: String {
        switch key {
        case "tags": "--tag"
        case "event_handlers": "--event-handler"
        case "api_allowed_hosts": "--api-allowed-host"
        case "api_allowed_origins": "--api-allowed-origin"
        default: "--" + key.replacing("_", with: "-")
        }
    }
    /// `RUMOR_DATA_DIR` for `data_dir`.
    public var environmentVariable: String { "RUMOR_" + key.uppercased() }
    /// Whether `--print-config` hides the value (it grants access to the swarm or the API).
    public var isSecret: Bool { key == "api_token" || key == "encrypt" }

    init(_ key: String, _ kind: Kind, default defaultValue: SettingValue? = nil, _ summary: String) {
        self.key = key
        self.kind = kind
        self.defaultValue = defaultValue
        self.summary = summary
    }
}

/// A setting's value before interpretation: what a flag, a variable or a file gave.
public enum SettingValue: Sendable, Hashable {
    case text(String)
    case list([String])

    /// The text, or the items joined with commas.
    public var text: String {
        switch self {
        case .text(let text): text
        case .list(let items): items.joined(separator: ",")
        }
    }

    /// The items, or the text as one item.
    public var items: [String] {
        switch self {
        case .text(let text): [text]
        case .list(let items): items
        }
    }
}

extension AgentSetting {
    /// Every setting, in the order `--print-config` and docs/guide/cli.md show them.
    public static let all: [AgentSetting] = [
        AgentSetting("name", .text, "Unique node name (default: the host name)."),
        AgentSetting("bind", .text, default: .text("0.0.0.0:7946"), "Gossip address, UDP and TCP."),
        AgentSetting("advertise", .text, "Address others reach this node at (default: the bind address, or the first non-loopback one)."),
        AgentSetting("join", .list, default: .list([]), "Seeds to join through, host:port (pilot:HOSTNAME or pilot:ADDRESS over Pilot)."),
        AgentSetting("transport", .text, default: .text("udp"), "What gossip travels over: udp (UDP and TCP) or pilot (the Pilot overlay)."),
        AgentSetting("pilot_socket", .text, default: .text("/tmp/pilot.sock"), "The pilot-daemon's IPC socket, with transport pilot."),
        AgentSetting("pilot_port", .count, default: .text("7946"), "The Pilot port gossip uses, the same on every node of the swarm."),
        AgentSetting("swarm", .text, default: .text(""), "Swarm name: nodes with another name ignore this one."),
        AgentSetting(
            "discover", .boolean, default: .text("false"),
            "true: find the swarm's nodes on the local network by its name, no seed needed (multicast DNS, as Serf's -discover)."),
        AgentSetting("data_dir", .text, "Directory for persistent state (default: state in memory only)."),
        AgentSetting("api", .text, default: .text("127.0.0.1:7373"), "Local HTTP API address."),
        AgentSetting("api_token", .text, "Bearer token the API requires; needed for a non-loopback api."),
        AgentSetting(
            "api_max_connections", .count, default: .text(String(APILimits().maxConnections)),
            "API connections held at once: past it a new one closes the one waiting longest for a request head, or gets 503 too_many_connections (lowered to fit the open-file limit)."),
        AgentSetting(
            "api_max_streams", .count, default: .text(String(APILimits().maxStreams)),
            "Streams (watch, events, monitor, query) open at once; past it 503 too_many_streams. Below api_max_connections."),
        AgentSetting(
            "api_header_timeout", .duration, default: .text(durationText(APILimits().headerTimeout)),
            "An API connection that has not sent a complete request head this long after it opened is closed."),
        AgentSetting(
            "api_idle_timeout", .duration, default: .text(durationText(APILimits().idleTimeout)),
            "A kept-alive API connection with no request this long is closed."),
        AgentSetting(
            "api_body_timeout", .duration, default: .text(durationText(APILimits().bodyTimeout)),
            "A request body not received in full this long after its head is cut off, its connection closed."),
        AgentSetting(
            "api_stream_keepalive", .duration, default: .text(durationText(APILimits().streamKeepAlive)),
            "A server-sent-event stream with nothing to send writes a comment line this often (a gone reader is found by the write)."),
        AgentSetting(
            "api_allowed_hosts", .list, default: .list([]),
            "Host names the API answers besides its address and loopback names (others get 403 forbidden: DNS rebinding)."),
        AgentSetting(
            "api_allowed_origins", .list, default: .list([]),
            "Web page origins (http://host:port) allowed to call the API besides its own status page (others get 403 forbidden)."),
        AgentSetting("encrypt", .text, "Base64 gossip key from `rumor keygen`; a saved keyring takes precedence."),
        AgentSetting(
            "encrypt_verify_incoming", .boolean, default: .text("true"),
            "false: accept plaintext gossip too, while a plaintext swarm moves to encryption."),
        AgentSetting(
            "encrypt_verify_outgoing", .boolean, default: .text("true"),
            "false: send plaintext gossip, the first step of that move."),
        AgentSetting("keyring_file", .text, "Keyring file (default: DATA_DIR/keyring.json)."),
        AgentSetting("profile", .text, default: .text("lan"), "Timing preset: lan, wan or local."),
        AgentSetting("tags", .pairs, default: .list([]), "Node tags KEY=VALUE (Serf's tags), 512 bytes in all encoded."),
        AgentSetting(
            "event_handlers", .list, default: .list([]),
            "Serf event handlers [FILTER=]SCRIPT (member-join, member-leave, member-failed, member-update, member-reap, user[:NAME])."),
        AgentSetting("handler_timeout", .duration, default: .text("30s"), "An event handler running longer is killed, with its children."),
        AgentSetting(
            "protocol", .text, default: .text("serf"),
            "serf: Serf agents can join the swarm; memberlist: plain Go memberlist nodes can (a swarm speaks one)."),
        AgentSetting(
            "tombstone_grace", .duration, default: .text(durationText(ReplicationSettings().tombstoneGrace)),
            "How long deletes are remembered."),
        AgentSetting(
            "max_clock_offset", .duration, default: .text(durationText(ReplicationSettings().maximumClockOffset)),
            "How far apart the nodes' clocks may be: a node further than this from most peers refuses local writes (clock_skew) until its clock is back."),
        AgentSetting(
            "direct_push_limit", .count, default: .text(String(ReplicationSettings().directPushLimit)),
            "Swarms up to this many nodes get writes straight from the writer; larger ones down the broadcast tree."),
        AgentSetting(
            "ready_timeout", .duration, default: .text(durationText(NodeSettings().readyTimeout)),
            "A node that joins peers serves reads once it synced with one, or after this long without an answer."),
        AgentSetting(
            "wait_ready", .boolean, default: .text("false"),
            "true: announce the start (the `rumor agent up: …` line on stdout, systemd's READY=1) only once the node is ready, not once its API listens."),
        AgentSetting(
            "disable_coordinates", .boolean, default: .text("false"),
            "true: send acks without a Vivaldi network coordinate and keep none (Serf's disable_coordinates); rumor rtt then answers no_coordinate."),
        AgentSetting("log_level", .text, default: .text("info"), "trace, debug, info, notice, warning or error."),
    ]

    /// The setting with this config-file key.
    public static func named(_ key: String) -> AgentSetting? { all.first { $0.key == key } }

    /// `1d`, `24h`, `30m`, `90s` or `1.5s`: the largest unit that divides the duration.
    static func durationText(_ duration: Duration) -> String {
        let milliseconds = duration.nanosecondsClamped / 1_000_000
        if milliseconds > 0, milliseconds < 1000 { return "\(milliseconds)ms" }
        for (unit, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)]
        where milliseconds % size == 0 {
            return "\(milliseconds / size)\(unit)"
        }
        return "\(Double(milliseconds) / 1000)s"
    }
}
