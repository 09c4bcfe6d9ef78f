import ArgumentParser
import Foundation
import RumorAgent

@main
struct Rumor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rumor",
        abstract: "Gossip membership and a replicated key-value store for swarms of agents, services and machines.",
        subcommands: [
            AgentCommand.self, MembersCommand.self, JoinCommand.self, LeaveCommand.self, InfoCommand.self,
            PutCommand.self, GetCommand.self, DeleteCommand.self, ListCommand.self, WatchCommand.self,
            StatusCommand.self, KeygenCommand.self, KeysCommand.self, SimCommand.self,
        ])

    /// Parses and runs, reporting every failure as `code`/`message`/`hint` (JSON with `--json`)
    /// on stderr with exit status 1.
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let wantsJSON = arguments.contains("--json")
        // Swift repairs invalid UTF-8 in arguments with U+FFFD; a key must not change silently.
        for index in 1..<Int(CommandLine.argc) {
            guard let raw = CommandLine.unsafeArgv[index], String(validatingCString: raw) == nil else { continue }
            Output.fail(
                AgentError(
                    code: .badArguments, message: "argument \(index) is not valid UTF-8",
                    hint: "keys and values are UTF-8 text; send binary values base64-encoded"),
                json: wantsJSON)
        }
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as AgentError {
            Output.fail(error, json: wantsJSON)
        } catch {
            let exitCode = Rumor.exitCode(for: error)
            if exitCode == .success {
                Rumor.exit(withError: error)  // --help, --version
            }
            guard wantsJSON else { Rumor.exit(withError: error) }
            let message = Rumor.message(for: error).trimmingCharacters(in: .whitespacesAndNewlines)
            Output.fail(
                AgentError(code: .badArguments, message: message, hint: "see `rumor help` for usage"), json: true)
        }
    }
}
