import ArgumentParser
import Foundation
import RumorAgent

/// Options every command that talks to a running agent takes.
struct ClientOptions: ParsableArguments {
    @Option(name: .customLong("api"), help: "The agent's API address (env RUMOR_API).")
    var api: String = ProcessInfo.processInfo.environment["RUMOR_API"] ?? "127.0.0.1:7373"

    @Option(name: .customLong("api-token"), help: "Bearer token, when the agent requires one (env RUMOR_API_TOKEN).")
    var token: String?

    @Flag(help: "Print the JSON envelope instead of text.")
    var json = false

    func client(timeout: TimeInterval = 10) -> APIClient {
        APIClient(address: api, token: token ?? ProcessInfo.processInfo.environment["RUMOR_API_TOKEN"], timeout: timeout)
    }

    /// Prints the envelope (JSON mode) or the text rendering.
    func emit(envelope: String, text: @autoclosure () -> String) {
        Output.print(json ? envelope.trimmingCharacters(in: .whitespacesAndNewlines) : text())
    }
}

struct MembersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "members", abstract: "List the members this agent knows.")
    @OptionGroup var options: ClientOptions

    struct Members: Decodable { var members: [MemberSnapshot] }

    func run() async throws {
        let (value, envelope) = try await options.client().call("GET", "/v1/members", as: Members.self)
        options.emit(envelope: envelope, text: Output.membersTable(value.members))
    }
}

struct JoinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "join", abstract: "Join the swarm through one or more addresses.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "Seed addresses, HOST:PORT.") var addresses: [String]

    struct Joined: Decodable { var contacted: Int }

    func run() async throws {
        let (value, envelope) = try await options.client(timeout: 30).call(
            "POST", "/v1/join", as: Joined.self, body: JoinRequest(addresses: addresses))
        options.emit(envelope: envelope, text: "joined: \(value.contacted) of \(addresses.count) contacted")
    }
}

struct LeaveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leave", abstract: "Leave the swarm gracefully (the agent keeps running until stopped).")
    @OptionGroup var options: ClientOptions

    func run() async throws {
        let (_, envelope) = try await options.client(timeout: 15).call("POST", "/v1/leave")
        options.emit(envelope: envelope, text: "left the swarm")
    }
}

struct InfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Show this agent's state and counters.")
    @OptionGroup var options: ClientOptions

    func run() async throws {
        let (value, envelope) = try await options.client().call("GET", "/v1/info", as: AgentInfo.self)
        options.emit(envelope: envelope, text: Output.infoText(value))
    }
}
