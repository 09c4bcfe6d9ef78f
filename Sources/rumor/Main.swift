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
/// (no Foundation, no event loop); `agent`, `sim`, `mcp` and `context` are handed to `rumor-agent`.
@main
struct Rumor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rumor",
        abstract: rumorAbstract,
        subcommands: [Agent.self] + clientCommands + [Sim.self, MCP.self, Context.self])

    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let served = Set(ServerCommands.summaries.map(\.name))
        let first = arguments.first ?? ""
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

    struct MCP: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "mcp", abstract: ServerCommands.mcpAbstract)
        @Argument(parsing: .captureForPassthrough) var arguments: [String] = []
        func run() { ServerExecutable.replaceProcess(arguments: ["mcp"] + arguments) }
    }

    struct Context: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "context", abstract: ServerCommands.contextAbstract)
        @Argument(parsing: .captureForPassthrough) var arguments: [String] = []
        func run() { ServerExecutable.replaceProcess(arguments: ["context"] + arguments) }
    }
}

/// `rumor-agent`, found beside this executable (or on PATH).
enum ServerExecutable {
    static func replaceProcess(arguments: [String]) -> Never {
        let path = locate()
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        execv(path, argv)
        Output.fail(
            CLIError(
                code: "agent_failed", message: "cannot run \(path): \(String(cString: strerror(errno)))",
                hint: "`swift build -c release` builds both rumor and \(ServerCommands.executableName); keep them in one directory"),
            json: CommandLineRunner.wantsJSON)
    }

    static func locate() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if length > 0 {
            let own = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if let slash = own.lastIndex(of: "/") {
                let beside = String(own[...slash]) + ServerCommands.executableName
                if access(beside, X_OK) == 0 { return beside }
            }
        }
        for directory in (getenv("PATH").map { String(cString: $0) } ?? "").split(separator: ":") {
            let candidate = "\(directory)/\(ServerCommands.executableName)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return ServerCommands.executableName
    }
}
