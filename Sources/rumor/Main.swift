import ArgumentParser
import RumorCLI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `rumor`: the command users type. Client commands run here, on a few milliseconds of start-up
/// (no Foundation, no event loop); `agent`, `sim` and `context` are handed to
/// `rumor-agent`, `mcp` to `rumor-mcp`.
@main
struct Rumor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rumor",
        abstract: rumorAbstract,
        subcommands: [Agent.self] + clientCommands + [Sim.self, MCPLauncher.self, Context.self])

    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let first = arguments.first ?? ""
        if first == "mcp" {
            ServerExecutable.replaceProcess(with: ServerCommands.mcpExecutableName, arguments: Array(arguments.dropFirst()))
        }
        let served = Set(ServerCommands.summaries.map(\.name))
        if served.contains(first) || (first == "help" && arguments.count > 1 && served.contains(arguments[1]))
            || arguments.contains("--generate-completion-script") || arguments.contains("--experimental-dump-help")
        {
            ServerExecutable.replaceProcess(arguments: arguments)
        }
        var command = CommandLineRunner.parse(Self.self)
        CommandLineRunner.run(&command, root: Self.self)
    }

    // Placeholders that list the served commands in `rumor --help`; `main` hands them over
    // before parsing.
    struct Agent: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "agent", abstract: ServerCommands.agentAbstract)
        @Argument(parsing: .captureForPassthrough) var arguments: [String] = []
        func run() { ServerExecutable.replaceProcess(arguments: ["agent"] + arguments) }
    }

    struct Sim: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "sim", abstract: ServerCommands.simAbstract)
        @Argument(parsing: .captureForPassthrough) var arguments: [String] = []
        func run() { ServerExecutable.replaceProcess(arguments: ["sim"] + arguments) }
    }

    struct Context: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "context", abstract: ServerCommands.contextAbstract)
        @Argument(parsing: .captureForPassthrough) var arguments: [String] = []
        func run() { ServerExecutable.replaceProcess(arguments: ["context"] + arguments) }
    }
}
