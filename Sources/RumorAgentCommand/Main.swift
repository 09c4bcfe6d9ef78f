import ArgumentParser
import RumorAgent
import RumorCLI

/// `rumor-agent`: the commands that need the protocol, storage and HTTP server (`agent`, `sim`,
/// `context`), plus every client command so that help, completions and `context` describe the
/// whole of `rumor`. Users run it through `rumor`.
@main
struct RumorServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rumor",
        abstract: rumorAbstract,
        subcommands: [AgentCommand.self] + clientCommands + [SimCommand.self, MCPLauncher.self, ContextCommand.self])

    static func main() async {
        var command = CommandLineRunner.parse(Self.self)
        do {
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            CommandLineRunner.fail(error, root: Self.self)
        }
    }
}

extension AgentError: CLIReportable {
    public var cliError: CLIError { CLIError(code: code.rawValue, message: message, hint: hint) }
}
