import ArgumentParser
import Foundation
import RumorAgent

/// `rumor keygen`: prints a new random 32-byte (AES-256) key, base64.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen", abstract: "Print a new gossip encryption key (base64, 32 bytes: AES-256).")
    @Flag(help: "Print the JSON envelope instead of text.")
    var json = false

    func run() throws {
        var generator = SystemRandomNumberGenerator()
        let key = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let text = Data(key).base64EncodedString()
        Output.print(json ? #"{"data":{"key":"\#(text)"},"status":"ok"}"# : text)
    }
}

/// `rumor keys list|install|use|remove`: manages the gossip keyring of every node at once.
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "List or rotate the swarm's gossip encryption keys.",
        discussion: """
            Rotation without downtime: `rumor keys install NEW`, then `rumor keys use NEW`, then \
            `rumor keys remove OLD`. Each command runs on every live node and reports those that \
            failed; rerunning it is safe.
            """,
        subcommands: [List.self, Install.self, Use.self, Remove.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Show which keys the nodes hold.")
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let (report, envelope) = try await options.client(timeout: 30).call("GET", "/v1/keys", as: KeyringReport.self)
            options.emit(envelope: envelope, text: Output.keyringText(report))
        }
    }

    struct Install: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "install", abstract: "Install a key on every node (used for receiving at once).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The key, base64 (from `rumor keygen`).") var key: String

        func run() async throws { try await runOperation("install", key: key, options: options) }
    }

    struct Use: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "use", abstract: "Make an installed key the primary (sending) key on every node.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The key, base64.") var key: String

        func run() async throws { try await runOperation("use", key: key, options: options) }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove", abstract: "Remove a key (not the primary) from every node.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The key, base64.") var key: String

        func run() async throws { try await runOperation("remove", key: key, options: options) }
    }
}

private func runOperation(_ operation: String, key: String, options: ClientOptions) async throws {
    let (report, envelope) = try await options.client(timeout: 30).call(
        "POST", "/v1/keys", as: KeyringReport.self, body: KeyringRequest(operation: operation, key: key))
    options.emit(envelope: envelope, text: "\(operation): done on \(report.responded) of \(report.nodes) nodes\n" + Output.keyringText(report))
}

extension Output {
    static func keyringText(_ report: KeyringReport) -> String {
        let rows = report.keys.sorted { $0.key < $1.key }.map { key, holders in
            [key, "\(holders)/\(report.nodes)", "\(report.primaryKeys[key] ?? 0)"]
        }
        return table(["KEY", "INSTALLED", "PRIMARY"], rows)
    }
}
