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
        discussion: "Every option can also be set by an environment variable RUMOR_<OPTION>, e.g. RUMOR_NAME, RUMOR_JOIN=a:7946,b:7946.")

    @Option(help: "Unique node name (env RUMOR_NAME; default: host name).")
    var name: String?
    @Option(help: "Gossip address, UDP and TCP (env RUMOR_BIND).")
    var bind: String?
    @Option(help: "Address others reach this node at (env RUMOR_ADVERTISE).")
    var advertise: String?
    @Option(help: "Seed to join through; repeatable (env RUMOR_JOIN, comma-separated).")
    var join: [String] = []
    @Option(help: "Swarm name: nodes with another name ignore this one (env RUMOR_SWARM).")
    var swarm: String?
    @Option(name: .customLong("data-dir"), help: "Directory for persistent state (env RUMOR_DATA_DIR).")
    var dataDirectory: String?
    @Option(help: "Local API address (env RUMOR_API).")
    var api: String?
    @Option(name: .customLong("api-token"), help: "Require this bearer token on the API (env RUMOR_API_TOKEN); needed for a non-loopback --api.")
    var apiToken: String?
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
    @Option(help: "Node metadata KEY=VALUE; repeatable, 512 bytes in all (env RUMOR_META, comma-separated).")
    var meta: [String] = []
    @Option(name: .customLong("tombstone-grace"), help: "How long deletes are remembered, e.g. 24h (env RUMOR_TOMBSTONE_GRACE).")
    var tombstoneGrace: String?
    @Option(
        name: .customLong("direct-push-limit"),
        help: "Swarms up to this many nodes get writes straight from the writer; larger ones down the broadcast tree (env RUMOR_DIRECT_PUSH_LIMIT; default 64).")
    var directPushLimit: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error (env RUMOR_LOG_LEVEL).")
    var logLevel: String?
    @Flag(help: "Report startup errors as JSON.")
    var json = false

    func run() async throws {
        let configuration = try makeConfiguration(environment: ProcessInfo.processInfo.environment)
        let level = try logLevelValue(environment: ProcessInfo.processInfo.environment)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "rumor")
        let agent = try Agent(configuration: configuration, logger: logger)
        agent.metrics.bootstrapProcess()
        let api = APIServer(
            control: agent, host: configuration.apiHost, port: configuration.apiPort, token: configuration.apiToken,
            logger: Logger(label: "rumor.api"))
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: agent), .init(service: api)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        do {
            try await group.run()
        } catch let error as AgentError {
            throw error
        } catch {
            throw AgentError(code: .agentFailed, message: "\(error)", hint: "see the log above")
        }
    }

    /// Builds the configuration from flags, then environment variables, then defaults, and
    /// validates it (`AgentConfiguration.validate()`, which `Agent.init` repeats).
    func makeConfiguration(environment: [String: String]) throws -> AgentConfiguration {
        func value(_ flag: String?, _ variable: String) -> String? {
            flag ?? environment[variable].flatMap { $0.isEmpty ? nil : $0 }
        }
        func list(_ flags: [String], _ variable: String) -> [String] {
            if !flags.isEmpty { return flags }
            return (environment[variable] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
        }
        let nodeName = value(name, "RUMOR_NAME") ?? ProcessInfo.processInfo.hostName
        var configuration = AgentConfiguration(name: nodeName)

        let (bindHost, bindPort) = try hostPort(value(bind, "RUMOR_BIND") ?? "0.0.0.0:7946", defaultPort: 7946, flag: "--bind")
        configuration.bindHost = bindHost
        configuration.bindPort = bindPort
        if let advertise = value(advertise, "RUMOR_ADVERTISE") {
            let (host, port) = try hostPort(advertise, defaultPort: bindPort, flag: "--advertise")
            configuration.advertiseHost = host
            configuration.advertisePort = port
        }
        configuration.seeds = list(join, "RUMOR_JOIN")
        for seed in configuration.seeds { _ = try hostPort(seed, defaultPort: 7946, flag: "--join") }
        configuration.swarm = value(swarm, "RUMOR_SWARM") ?? ""
        configuration.dataDirectory = value(dataDirectory, "RUMOR_DATA_DIR")

        let (apiHost, apiPort) = try hostPort(value(api, "RUMOR_API") ?? "127.0.0.1:7373", defaultPort: 7373, flag: "--api")
        configuration.apiHost = apiHost
        configuration.apiPort = apiPort
        configuration.apiToken = value(apiToken, "RUMOR_API_TOKEN")

        if let text = value(encrypt, "RUMOR_ENCRYPT") {
            do {
                configuration.encryptionKey = try KeyText.decode(text)
            } catch {
                throw AgentError(code: .badArguments, message: "--encrypt: \(error.message)", hint: error.hint)
            }
        }
        configuration.keyringFile = value(keyringFile, "RUMOR_KEYRING_FILE")
        configuration.encryptionVerifiesIncoming = try boolean(
            value(encryptVerifyIncoming, "RUMOR_ENCRYPT_VERIFY_INCOMING"), flag: "--encrypt-verify-incoming")
        configuration.encryptionVerifiesOutgoing = try boolean(
            value(encryptVerifyOutgoing, "RUMOR_ENCRYPT_VERIFY_OUTGOING"), flag: "--encrypt-verify-outgoing")

        let profileName = value(profile, "RUMOR_PROFILE") ?? "lan"
        guard let settings = MembershipSettings.preset(named: profileName) else {
            throw AgentError(code: .badArguments, message: "unknown profile '\(profileName)'", hint: "use lan, wan or local")
        }
        configuration.membership = settings

        let metaPairs = list(meta, "RUMOR_META")
        for pair in metaPairs where !pair.contains("=") {
            throw AgentError(code: .badArguments, message: "--meta '\(pair)' is not KEY=VALUE", hint: "e.g. --meta role=worker")
        }
        configuration.meta = Array(metaPairs.joined(separator: ",").utf8)
        if let grace = value(tombstoneGrace, "RUMOR_TOMBSTONE_GRACE") {
            configuration.replication.tombstoneGrace = .milliseconds(Int64(try parseDuration(grace) * 1000))
        }
        if let limit = value(directPushLimit, "RUMOR_DIRECT_PUSH_LIMIT") {
            guard let count = Int(limit), count >= 1 else {
                throw AgentError(
                    code: .badArguments, message: "--direct-push-limit '\(limit)' is not a positive count",
                    hint: "e.g. --direct-push-limit 64")
            }
            configuration.replication.directPushLimit = count
        }
        try configuration.validate()
        return configuration
    }

    func logLevelValue(environment: [String: String]) throws -> Logger.Level {
        let text = logLevel ?? environment["RUMOR_LOG_LEVEL"] ?? "info"
        guard let level = Logger.Level(rawValue: text.lowercased()) else {
            throw AgentError(
                code: .badArguments, message: "unknown log level '\(text)'",
                hint: "use trace, debug, info, notice, warning or error")
        }
        return level
    }
}

/// Splits and checks `HOST:PORT`, naming the flag in the error.
func hostPort(_ text: String, defaultPort: Int, flag: String) throws -> (String, Int) {
    do {
        return try splitHostPort(text, defaultPort: defaultPort)
    } catch {
        throw AgentError(code: .badArguments, message: "\(flag) '\(text)' is not HOST:PORT", hint: "e.g. \(flag) 127.0.0.1:7946")
    }
}

/// `true` or `false` (nil, when not given, is `true`), naming the flag in the error.
func boolean(_ text: String?, flag: String) throws -> Bool {
    switch text?.lowercased() {
    case nil, "true": return true
    case "false": return false
    default: throw AgentError(code: .badArguments, message: "\(flag) '\(text ?? "")' is not true or false", hint: "e.g. \(flag) false")
    }
}
