import ArgumentParser
import Foundation
import Logging
import RumorAgent
import RumorCLI
import RumorCore
import ServiceLifecycle

/// `rumor agent`: runs a node until SIGTERM/SIGINT, which make it leave gracefully first.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: ServerCommands.agentAbstract,
        discussion: """
            Every option can also be set by an environment variable RUMOR_<OPTION>, e.g. RUMOR_NAME, \
            RUMOR_JOIN=a:7946,b:7946, or in a config file (--config FILE, TOML or JSON) under its \
            snake-case key, e.g. data_dir = "/var/lib/rumor". Flags win over variables, variables over \
            the file, the file over defaults; --print-config shows the result.
            """)

    @Option(help: "Unique node name (env RUMOR_NAME; default: host name).")
    var name: String?
    @Option(help: "Gossip address, UDP and TCP (env RUMOR_BIND).")
    var bind: String?
    @Option(help: "Address others reach this node at (env RUMOR_ADVERTISE).")
    var advertise: String?
    @Option(help: "Seed to join through; repeatable (env RUMOR_JOIN, comma-separated).")
    var join: [String] = []
    @Option(help: "What gossip travels over: udp (UDP and TCP) or pilot (the Pilot overlay; env RUMOR_TRANSPORT).")
    var transport: String?
    @Option(name: .customLong("pilot-socket"), help: "The pilot-daemon's IPC socket, with --transport pilot (env RUMOR_PILOT_SOCKET; default /tmp/pilot.sock).")
    var pilotSocket: String?
    // Counts and durations are taken as text whatever they look like (`.unconditional`), so that
    // a negative one is refused naming the flag and the range, not reported as a missing value.
    @Option(name: .customLong("pilot-port"), parsing: .unconditional, help: "The Pilot port gossip uses, the same on every node (env RUMOR_PILOT_PORT; default 7946).")
    var pilotPort: String?
    @Option(help: "Swarm name: nodes with another name ignore this one (env RUMOR_SWARM).")
    var swarm: String?
    @Flag(help: "Find the swarm's nodes on the local network by its --swarm name, no --join needed (multicast DNS, as Serf's -discover; env RUMOR_DISCOVER).")
    var discover = false
    @Option(name: .customLong("data-dir"), help: "Directory for persistent state (env RUMOR_DATA_DIR).")
    var dataDirectory: String?
    @Option(help: "Local API address (env RUMOR_API).")
    var api: String?
    @Option(name: .customLong("api-token"), help: "Require this bearer token on the API (env RUMOR_API_TOKEN); needed for a non-loopback --api.")
    var apiToken: String?
    @Option(
        name: .customLong("api-max-connections"), parsing: .unconditional,
        help: "API connections held at once; past it the one waiting longest for a request head is closed, or 503 (env RUMOR_API_MAX_CONNECTIONS; default 512).")
    var apiMaxConnections: String?
    @Option(
        name: .customLong("api-max-streams"), parsing: .unconditional,
        help: "Streams (watch, events, monitor, query) open at once; past it 503 (env RUMOR_API_MAX_STREAMS; default 128).")
    var apiMaxStreams: String?
    @Option(
        name: .customLong("api-header-timeout"), parsing: .unconditional,
        help: "Close an API connection that sent no complete request head this long after opening, e.g. 10s (env RUMOR_API_HEADER_TIMEOUT).")
    var apiHeaderTimeout: String?
    @Option(
        name: .customLong("api-idle-timeout"), parsing: .unconditional,
        help: "Close a kept-alive API connection with no request this long, e.g. 60s (env RUMOR_API_IDLE_TIMEOUT).")
    var apiIdleTimeout: String?
    @Option(
        name: .customLong("api-body-timeout"), parsing: .unconditional,
        help: "Cut off a request body not received in full this long after its head, e.g. 30s (env RUMOR_API_BODY_TIMEOUT).")
    var apiBodyTimeout: String?
    @Option(
        name: .customLong("api-stream-keepalive"), parsing: .unconditional,
        help: "How often an idle server-sent-event stream writes a comment line, e.g. 15s (env RUMOR_API_STREAM_KEEPALIVE).")
    var apiStreamKeepalive: String?
    @Option(
        name: .customLong("api-allowed-host"),
        help: "A Host name the API answers besides its address and loopback names; repeatable (env RUMOR_API_ALLOWED_HOSTS, comma-separated).")
    var apiAllowedHosts: [String] = []
    @Option(
        name: .customLong("api-allowed-origin"),
        help: "A web page origin (http://host:port) allowed to call the API; repeatable (env RUMOR_API_ALLOWED_ORIGINS, comma-separated).")
    var apiAllowedOrigins: [String] = []
    @Option(help: "Encrypt gossip with this base64 key from `rumor keygen` (env RUMOR_ENCRYPT); a saved keyring takes precedence.")
    var encrypt: String?
    @Option(
        name: .customLong("encrypt-verify-incoming"),
        help: "true: refuse plaintext gossip; false: accept it too, while a plaintext swarm moves to encryption (env RUMOR_ENCRYPT_VERIFY_INCOMING).")
    var encryptVerifyIncoming: String?
    @Option(
        name: .customLong("encrypt-verify-outgoing"),
        help: "true: send encrypted gossip; false: send plaintext, the first step of that move (env RUMOR_ENCRYPT_VERIFY_OUTGOING).")
    var encryptVerifyOutgoing: String?
    @Option(name: .customLong("keyring-file"), help: "Keyring file (env RUMOR_KEYRING_FILE; default: DATA_DIR/keyring.json).")
    var keyringFile: String?
    @Option(help: "Timing preset: lan, wan or local (env RUMOR_PROFILE).")
    var profile: String?
    @Option(name: .customLong("tag"), help: "Node tag KEY=VALUE (Serf's tags); repeatable, 512 bytes in all encoded (env RUMOR_TAGS, comma-separated).")
    var tags: [String] = []
    @Option(
        name: .customLong("event-handler"),
        help: "Run SCRIPT on events, Serf's way: [FILTER=]SCRIPT, FILTER member-join,member-leave,member-failed,member-update,member-reap,user[:NAME]; repeatable (env RUMOR_EVENT_HANDLERS).")
    var eventHandlers: [String] = []
    @Option(name: .customLong("handler-timeout"), parsing: .unconditional, help: "Kill an event handler running longer than this, e.g. 30s (env RUMOR_HANDLER_TIMEOUT).")
    var handlerTimeout: String?
    @Option(
        name: .customLong("protocol"),
        help: "serf: Serf agents can join the swarm (default); memberlist: plain Go memberlist nodes can (env RUMOR_PROTOCOL).")
    var gossipProtocol: String?
    @Option(name: .customLong("tombstone-grace"), parsing: .unconditional, help: "How long deletes are remembered, e.g. 24h (env RUMOR_TOMBSTONE_GRACE).")
    var tombstoneGrace: String?
    @Option(
        name: .customLong("max-clock-offset"), parsing: .unconditional,
        help: "How far apart the nodes' clocks may be; a node further than this from most peers refuses local writes until its clock is fixed, e.g. 500ms (env RUMOR_MAX_CLOCK_OFFSET; default 500ms).")
    var maxClockOffset: String?
    @Option(
        name: .customLong("direct-push-limit"), parsing: .unconditional,
        help: "Swarms up to this many nodes get writes straight from the writer; larger ones down the broadcast tree (env RUMOR_DIRECT_PUSH_LIMIT; default 64).")
    var directPushLimit: String?
    @Option(
        name: .customLong("ready-timeout"),
        help: "With peers to join, serve reads after this long even if no peer answered, e.g. 10s (env RUMOR_READY_TIMEOUT; default 10s).")
    var readyTimeout: String?
    @Flag(
        name: .customLong("wait-ready"),
        help: "Announce the start (the 'rumor agent up: …' line on stdout, systemd's READY=1) only once the node has synced with a peer, or after --ready-timeout (env RUMOR_WAIT_READY).")
    var waitReady = false
    @Flag(
        name: .customLong("disable-coordinates"),
        help: "Send acks without a Vivaldi network coordinate and keep none, as Serf's disable_coordinates (env RUMOR_DISABLE_COORDINATES).")
    var disableCoordinates = false
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error (env RUMOR_LOG_LEVEL).")
    var logLevel: String?
    @Option(help: "Read settings from this TOML or JSON file (env RUMOR_CONFIG); flags and environment variables override it.")
    var config: String?
    @Flag(help: "Move the saved state (DATA_DIR/state.sqlite) aside, kept, and rebuild it from the swarm: for a damaged or foreign state file.")
    var resync = false
    @Flag(name: .customLong("print-config"), help: "Print the effective configuration, with the source of each value, and exit.")
    var printConfig = false
    @Flag(help: "Report startup errors (and --print-config) as JSON.")
    var json = false

    func run() async throws {
        let settings = try resolveSettings(environment: ProcessInfo.processInfo.environment)
        let configuration = try makeConfiguration(settings)
        let level = try logLevelValue(settings)
        if printConfig {
            print(json ? try EffectiveConfiguration.json(settings, name: configuration.name) : EffectiveConfiguration.toml(settings, name: configuration.name))
            return
        }
        let monitor = LogMonitor()
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return MonitoredLogHandler(base: handler, label: label, monitor: monitor)
        }
        let logger = Logger(label: "rumor")
        // The agent opens its gossip sockets, then waits for the API to listen before it joins.
        let apiListening = StartGate()
        let agent = try Agent(configuration: configuration, logger: logger, logMonitor: monitor, startGate: apiListening)
        agent.metrics.bootstrapProcess()
        let apiLogger = Logger(label: "rumor.api")
        let openFiles = FileLimit.raise(logger: apiLogger)
        let api = APIServer(
            control: agent, host: configuration.apiHost, port: configuration.apiPort, token: configuration.apiToken,
            limits: configuration.apiLimits.fitted(toOpenFiles: openFiles, logger: apiLogger),
            logger: apiLogger, listening: apiListening, onListening: { await agent.apiListening() })
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: agent), .init(service: api)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        do {
            try await group.run()
        } catch let error as AgentError {
            throw error
        } catch let failure as BindFailure {
            throw failure.error(from: settings)
        } catch {
            throw AgentError(code: .agentFailed, message: "\(error)", hint: "see the log above")
        }
    }

    /// The settings given on the command line, by config-file key.
    var flagValues: [String: SettingValue] {
        var values: [String: SettingValue] = [:]
        let texts: [(String, String?)] = [
            ("name", name), ("bind", bind), ("advertise", advertise), ("swarm", swarm), ("data_dir", dataDirectory),
            ("api", api), ("api_token", apiToken), ("encrypt", encrypt), ("encrypt_verify_incoming", encryptVerifyIncoming),
            ("encrypt_verify_outgoing", encryptVerifyOutgoing), ("keyring_file", keyringFile), ("profile", profile),
            ("tombstone_grace", tombstoneGrace), ("max_clock_offset", maxClockOffset), ("direct_push_limit", directPushLimit), ("log_level", logLevel),
            ("transport", transport), ("pilot_socket", pilotSocket), ("pilot_port", pilotPort), ("protocol", gossipProtocol), ("handler_timeout", handlerTimeout),
            ("api_max_connections", apiMaxConnections), ("api_max_streams", apiMaxStreams), ("api_header_timeout", apiHeaderTimeout),
            ("api_idle_timeout", apiIdleTimeout), ("api_body_timeout", apiBodyTimeout), ("api_stream_keepalive", apiStreamKeepalive),
        ]
        for case (let key, let text?) in texts { values[key] = .text(text) }
        if discover { values["discover"] = .text("true") }
        if waitReady { values["wait_ready"] = .text("true") }
        if disableCoordinates { values["disable_coordinates"] = .text("true") }
        if let readyTimeout { values["ready_timeout"] = .text(readyTimeout) }
        if !join.isEmpty { values["join"] = .list(join) }
        if !tags.isEmpty { values["tags"] = .list(tags) }
        if !eventHandlers.isEmpty { values["event_handlers"] = .list(eventHandlers) }
        if !apiAllowedHosts.isEmpty { values["api_allowed_hosts"] = .list(apiAllowedHosts) }
        if !apiAllowedOrigins.isEmpty { values["api_allowed_origins"] = .list(apiAllowedOrigins) }
        return values
    }

    /// Every setting's value and source: flags, then environment variables, then the config
    /// file (`--config` or RUMOR_CONFIG), then defaults.
    func resolveSettings(environment: [String: String]) throws -> ResolvedSettings {
        let path = config ?? environment["RUMOR_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        let file = try path.map { (path: $0, values: try ConfigFile.load($0)) }
        return ResolvedSettings(flags: flagValues, environment: environment, file: file)
    }

    /// Builds the configuration from the resolved settings and validates it
    /// (`AgentConfiguration.validate()`, which `Agent.init` repeats). Errors name the flag,
    /// variable or file key that gave the bad value.
    func makeConfiguration(_ settings: ResolvedSettings) throws -> AgentConfiguration {
        var configuration = AgentConfiguration(name: settings.text("name") ?? ProcessInfo.processInfo.hostName)

        let (bindHost, bindPort) = try hostPort(settings.text("bind") ?? "", defaultPort: 7946, origin: settings.origin("bind"))
        configuration.bindHost = bindHost
        configuration.bindPort = bindPort
        if let advertise = settings.text("advertise") {
            let (host, port) = try hostPort(advertise, defaultPort: bindPort, origin: settings.origin("advertise"))
            configuration.advertiseHost = host
            configuration.advertisePort = port
        }
        let transportName = settings.text("transport") ?? "udp"
        guard let transport = TransportKind(rawValue: transportName) else {
            throw AgentError(
                code: .badArguments, message: "\(settings.origin("transport")): unknown transport '\(transportName)'",
                hint: "use udp or pilot")
        }
        configuration.transport = transport
        // A setting of the other transport is refused only when it says something: a value
        // other than its default (a printed config holds every default).
        func given(_ key: String) -> ResolvedSettings.Entry? {
            guard let entry = settings.entry(key), entry.source != .defaultValue,
                entry.value.items != entry.setting.defaultValue?.items
            else { return nil }
            return entry
        }
        for key in ["bind", "advertise"] where transport == .pilot {
            if given(key) != nil {
                throw AgentError(
                    code: .badArguments, message: "\(settings.origin(key)) applies to --transport udp; over Pilot the daemon gives the address",
                    hint: "drop \(settings.origin(key)); pick the Pilot port with --pilot-port")
            }
        }
        for key in ["pilot_socket", "pilot_port"] where transport == .udp {
            if given(key) != nil {
                throw AgentError(
                    code: .badArguments, message: "\(settings.origin(key)) applies to --transport pilot",
                    hint: "add --transport pilot, or drop \(settings.origin(key))")
            }
        }
        configuration.pilotSocket = settings.text("pilot_socket") ?? configuration.pilotSocket
        if let text = settings.text("pilot_port") {
            guard let port = UInt16(text), port > 0 else {
                throw AgentError(
                    code: .badArguments, message: "\(settings.origin("pilot_port")) '\(text)' is not a port (1-65535)",
                    hint: "e.g. --pilot-port 7946")
            }
            configuration.pilotPort = port
        }
        configuration.seeds = settings.items("join")
        for seed in configuration.seeds {
            switch transport {
            case .udp where seed.hasPrefix("pilot:"):
                throw AgentError(
                    code: .badArguments, message: "\(settings.origin("join")) '\(seed)' is a Pilot seed but gossip runs over UDP",
                    hint: "add --transport pilot (and --pilot-socket PATH)")
            case .udp:
                _ = try hostPort(seed, defaultPort: 7946, origin: settings.origin("join"))
            case .pilot:
                do {
                    _ = try PilotSeed(seed, defaultPort: configuration.pilotPort)
                } catch {
                    throw AgentError(code: .badArguments, message: "\(settings.origin("join")): \(error.message)", hint: error.hint)
                }
            }
        }
        configuration.swarm = settings.text("swarm") ?? ""
        configuration.discover = try settings.boolean("discover", default: false)
        if configuration.discover {
            guard !configuration.swarm.isEmpty else {
                throw AgentError(
                    code: .badArguments, message: "\(settings.origin("discover")) finds the swarm by its name, but no swarm is named",
                    hint: "add --swarm NAME (the same on every node)")
            }
            guard configuration.swarm.utf8.count <= 57, !configuration.swarm.contains(".") else {
                throw AgentError(
                    code: .badArguments,
                    message: "\(settings.origin("swarm")) '\(configuration.swarm)' cannot be discovered: a DNS label takes at most 57 bytes after _serf_, without dots",
                    hint: "pick a shorter swarm name without dots")
            }
            guard transport == .udp else {
                throw AgentError(
                    code: .badArguments, message: "\(settings.origin("discover")) works on the local network, not over Pilot",
                    hint: "join Pilot peers with --join pilot:HOSTNAME")
            }
        }
        configuration.dataDirectory = settings.text("data_dir")
        configuration.resync = resync
        if resync, configuration.dataDirectory == nil {
            throw AgentError(code: .badArguments, message: "--resync needs a --data-dir", hint: "pass the --data-dir whose state to rebuild")
        }

        let (apiHost, apiPort) = try hostPort(settings.text("api") ?? "", defaultPort: 7373, origin: settings.origin("api"))
        configuration.apiHost = apiHost
        configuration.apiPort = apiPort
        configuration.apiToken = settings.text("api_token")
        if let token = configuration.apiToken, let problem = AgentConfiguration.apiTokenProblem(token) {
            throw AgentError(code: .badArguments, message: "\(settings.origin("api_token")) \(problem)", hint: AgentConfiguration.apiTokenHint)
        }
        configuration.apiLimits = try apiLimits(settings)

        if let text = settings.text("encrypt") {
            do {
                configuration.encryptionKey = try KeyText.decode(text)
            } catch {
                throw AgentError(code: .badArguments, message: "\(settings.origin("encrypt")): \(error.message)", hint: error.hint)
            }
        }
        configuration.keyringFile = settings.text("keyring_file")
        configuration.encryptionVerifiesIncoming = try settings.boolean("encrypt_verify_incoming", default: true)
        configuration.encryptionVerifiesOutgoing = try settings.boolean("encrypt_verify_outgoing", default: true)

        let profileName = settings.text("profile") ?? "lan"
        guard let preset = MembershipSettings.preset(named: profileName) else {
            throw AgentError(
                code: .badArguments, message: "\(settings.origin("profile")): unknown profile '\(profileName)'", hint: "use lan, wan or local")
        }
        configuration.membership = preset

        for pair in settings.items("tags") {
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                throw AgentError(
                    code: .badArguments, message: "\(settings.origin("tags")) '\(pair)' is not KEY=VALUE", hint: "e.g. --tag role=worker")
            }
            let key = String(pair[..<equals])
            guard !Node.reservedTagKeys.contains(key) else {
                throw AgentError(
                    code: .badArguments, message: "\(settings.origin("tags")): the tag \(key) is Rumor's own",
                    hint: "pick another tag name")
            }
            configuration.tags[key] = String(pair[pair.index(after: equals)...])
        }
        let protocolName = settings.text("protocol") ?? "serf"
        guard let gossipProtocol = GossipProtocol(rawValue: protocolName) else {
            throw AgentError(
                code: .badArguments, message: "\(settings.origin("protocol")): unknown protocol '\(protocolName)'",
                hint: "use serf (Serf agents may join) or memberlist (Go memberlist nodes may join)")
        }
        configuration.gossipProtocol = gossipProtocol
        for text in settings.items("event_handlers") {
            do {
                configuration.eventHandlers.append(try EventHandlerSpec(text))
            } catch {
                throw AgentError(code: .badArguments, message: "\(settings.origin("event_handlers")): \(error.message)", hint: error.hint)
            }
        }
        if let timeout = try settings.duration("handler_timeout") { configuration.handlerTimeout = timeout }
        configuration.waitReady = try settings.boolean("wait_ready", default: false)
        configuration.disableCoordinates = try settings.boolean("disable_coordinates", default: false)
        if let timeout = try settings.duration("ready_timeout") { configuration.readyTimeout = timeout }
        if let grace = try settings.duration("tombstone_grace") { configuration.replication.tombstoneGrace = grace }
        if let offset = try settings.duration("max_clock_offset") { configuration.replication.maximumClockOffset = offset }
        if let limit = settings.text("direct_push_limit") {
            guard let count = Int(limit), count >= 1 else {
                throw AgentError(
                    code: .badArguments, message: "\(settings.origin("direct_push_limit")) '\(limit)' is not a positive count",
                    hint: "e.g. --direct-push-limit 64")
            }
            configuration.replication.directPushLimit = count
        }
        try configuration.validate()
        return configuration
    }

    func logLevelValue(_ settings: ResolvedSettings) throws -> Logger.Level {
        let text = settings.text("log_level") ?? "info"
        guard let level = Logger.Level(rawValue: text.lowercased()) else {
            throw AgentError(
                code: .badArguments, message: "\(settings.origin("log_level")): unknown log level '\(text)'",
                hint: "use trace, debug, info, notice, warning or error")
        }
        return level
    }
}

/// Splits and checks `HOST:PORT`, naming the flag, variable or file key in the error.
func hostPort(_ text: String, defaultPort: Int, origin: String) throws -> (String, Int) {
    do {
        return try splitHostPort(text, defaultPort: defaultPort)
    } catch {
        throw AgentError(code: .badArguments, message: "\(origin) '\(text)' is not HOST:PORT", hint: "e.g. 127.0.0.1:7946")
    }
}
