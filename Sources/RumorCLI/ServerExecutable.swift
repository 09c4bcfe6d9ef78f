import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The executables that serve the heavy commands, found beside the running one (or on PATH).
public enum ServerExecutable {
    /// Replaces this process with `executable` (default `rumor-agent`) run with `arguments`.
    public static func replaceProcess(with executable: String = ServerCommands.executableName, arguments: [String]) -> Never {
        let path = locate(executable)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        execv(path, argv)
        Output.fail(
            CLIError(
                code: "agent_failed", message: "cannot run \(path): \(String(cString: strerror(errno)))",
                hint: "`swift build -c release` builds rumor, rumor-agent and rumor-mcp; keep them in one directory"),
            json: CommandLineRunner.wantsJSON)
    }

    static func locate(_ executable: String) -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if length > 0 {
            let own = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if let slash = own.lastIndex(of: "/") {
                let beside = String(own[...slash]) + executable
                if access(beside, X_OK) == 0 { return beside }
            }
        }
        for directory in (getenv("PATH").map { String(cString: $0) } ?? "").split(separator: ":") {
            let candidate = "\(directory)/\(executable)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return executable
    }
}

/// `rumor mcp` as the help tree and `context` show it; running it starts `rumor-mcp`.
public struct MCPLauncher: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "mcp", abstract: ServerCommands.mcpAbstract, discussion: ServerCommands.mcpDiscussion)
    @OptionGroup var options: ClientOptions
    public init() {}

    public func run() {
        var arguments = ["--api", options.api]
        if let token = options.token { arguments += ["--api-token", token] }
        ServerExecutable.replaceProcess(with: ServerCommands.mcpExecutableName, arguments: arguments)
    }
}
