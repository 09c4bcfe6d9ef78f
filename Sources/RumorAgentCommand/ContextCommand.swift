import ArgumentParser
import Foundation
import RumorAPI
import RumorCLI

/// `rumor context [--json]`: every command, flag, error code and exit status, for agents that
/// discover tools at run time. The command tree is ArgumentParser's own description of this
/// executable (so it can not drift from the parser), plus the error codes with their HTTP and
/// exit statuses, in the `{"status":"ok","data":…}` envelope every `--json` output has.
struct ContextCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "context", abstract: ServerCommands.contextAbstract)
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let tree = try Self.commandTree()
        let codes = ErrorCode.allCases.map {
            ["code": $0.rawValue, "httpStatus": $0.httpStatus, "exitStatus": ExitStatus(errorCode: $0.rawValue).rawValue] as [String: Any]
        }
        let statuses = ExitStatus.allCases.map { status in
            let codes = ErrorCode.allCases.map(\.rawValue).filter { status != .success && ExitStatus(errorCode: $0) == status }
            return ["status": status.rawValue, "meaning": status.meaning, "codes": codes] as [String: Any]
        }
        if json {
            let document: [String: Any] = [
                "tool": "rumor", "description": RumorServer.configuration.abstract,
                "api": ["default": "127.0.0.1:7373", "environment": "RUMOR_API", "tokenEnvironment": "RUMOR_API_TOKEN"],
                "commands": tree, "errorCodes": codes, "exitStatuses": statuses,
                "conventions": [
                    "json": "--json prints {\"status\":\"ok\",\"data\":…} on stdout, or {\"status\":\"error\",\"code\",\"message\",\"hint\"} on stderr with the exit status of exitStatuses",
                    "watch": "one JSON object per line; resume with --from SEQ",
                    "readiness": "after a start with peers to join, reads (get, list) fail with not_ready (HTTP 503) until the agent has synced with a peer (at most its ready_timeout, 10s by default): wait with `rumor wait --ready`, or pass --stale for a possibly stale read; writes and watch are not refused",
                ],
            ]
            let envelope: [String: Any] = ["status": "ok", "data": document]
            let data = try JSONSerialization.data(withJSONObject: envelope, options: [.sortedKeys, .withoutEscapingSlashes])
            Output.print(String(decoding: data, as: UTF8.self))
        } else {
            var lines: [String] = []
            func walk(_ command: [String: Any], path: String) {
                let name = path.isEmpty ? "rumor" : path
                if let abstract = command["abstract"] as? String { lines.append("\(name): \(abstract)") }
                for argument in command["arguments"] as? [[String: Any]] ?? [] {
                    guard let names = argument["names"] as? [[String: Any]], let first = names.first,
                        let flag = first["name"] as? String, !names.contains(where: { ($0["name"] as? String) == "help" })
                    else { continue }
                    let dash = (first["kind"] as? String) == "long" ? "--" : (first["kind"] as? String) == "short" ? "-" : ""
                    lines.append("    \(dash)\(flag)  \(argument["abstract"] as? String ?? "")")
                }
                for sub in command["subcommands"] as? [[String: Any]] ?? [] where (sub["commandName"] as? String) != "help" {
                    walk(sub, path: "\(name) \(sub["commandName"] as? String ?? "")")
                }
            }
            walk(tree, path: "")
            lines.append("exit statuses: " + ExitStatus.allCases.map { "\($0.rawValue) \($0.meaning)" }.joined(separator: "; "))
            lines.append("readiness: after a start with peers to join, get and list fail with not_ready until the agent synced with a peer; `rumor wait --ready` waits, --stale reads anyway")
            lines.append("error codes: " + ErrorCode.allCases.map(\.rawValue).joined(separator: ", "))
            Output.print(lines.joined(separator: "\n"))
        }
    }

    /// ArgumentParser's description of this executable's commands (`--experimental-dump-help`).
    static func commandTree() throws -> [String: Any] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["--experimental-dump-help"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard let document = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            let command = document["command"] as? [String: Any]
        else {
            throw AgentError(code: .internal, message: "cannot read the command tree", hint: "report this as a bug")
        }
        return command
    }
}
