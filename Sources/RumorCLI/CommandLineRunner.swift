import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Parses and runs a command line, reporting every failure as `code`/`message`/`hint` (the JSON
/// envelope with `--json`) on stderr, with the exit status of `ExitStatus`.
public enum CommandLineRunner {
    /// Whether the command line asks for JSON output.
    public static var wantsJSON: Bool { CommandLine.arguments.dropFirst().contains("--json") }

    /// Parses the arguments under `root`; on failure prints the error (help and version too) and
    /// exits.
    public static func parse<Root: ParsableCommand>(_ root: Root.Type) -> any ParsableCommand {
        let arguments = Array(CommandLine.arguments.dropFirst())
        // Swift repairs invalid UTF-8 in arguments with U+FFFD; a key must not change silently.
        for index in 1..<Int(CommandLine.argc) {
            guard let raw = CommandLine.unsafeArgv[index], String(validatingCString: raw) == nil else { continue }
            Output.fail(
                CLIError(
                    code: "bad_arguments", message: "argument \(index) is not valid UTF-8",
                    hint: "keys and values are UTF-8 text; send binary values base64-encoded"),
                json: wantsJSON)
        }
        do {
            return try Root.parseAsRoot(arguments)
        } catch {
            fail(error, root: root)
        }
    }

    /// Reports `error` and exits: ours and the agent's as code/message/hint, ArgumentParser's
    /// (usage errors, --help) as it prints them, or as `bad_arguments` with `--json`. Usage
    /// errors exit with `ExitStatus.usage` either way (argument-parser's own status is that one).
    public static func fail<Root: ParsableCommand>(_ error: any Error, root: Root.Type) -> Never {
        if let error = error as? CLIError { Output.fail(error, json: wantsJSON) }
        if let error = error as? any CLIReportable { Output.fail(error.cliError, json: wantsJSON) }
        let status = Root.exitCode(for: error)
        if status == .success || !wantsJSON { Root.exit(withError: error) }
        let message = Root.message(for: error).trimmingCharacters(in: " \n\t")
        let isUsage = status.rawValue == ExitStatus.usage.rawValue
        Output.fail(
            CLIError(
                code: isUsage ? "bad_arguments" : "internal", message: message,
                hint: isUsage ? "see `rumor help` for usage" : "report this as a bug, with the command line"),
            json: true)
    }

    /// Runs a synchronous command, reporting its failure.
    public static func run<Root: ParsableCommand>(_ command: inout any ParsableCommand, root: Root.Type) -> Never {
        do {
            try command.run()
            exit(0)
        } catch {
            fail(error, root: root)
        }
    }
}

/// An error from another layer (the agent's) that the CLI reports with its code, message and hint.
public protocol CLIReportable: Error {
    var cliError: CLIError { get }
}

extension String {
    /// The string without `characters` at either end.
    func trimmingCharacters(in characters: String) -> String {
        let set = Set(characters)
        return String(drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}
