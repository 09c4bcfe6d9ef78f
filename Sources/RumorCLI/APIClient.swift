#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Talks to the local agent's HTTP API: asks for text (or the JSON envelope with `--json`) and
/// hands back what the agent answered, so the CLI prints it as is.
public struct APIClient: Sendable {
    public var address: String
    public var token: String?
    /// Whether to ask for the JSON envelope rather than text.
    public var json: Bool

    public init(address: String, token: String?, json: Bool) {
        self.address = address
        self.token = token
        self.json = json
    }

    /// Performs one request (`body` is JSON) and returns the answer's text: the text rendering,
    /// or the envelope with `json`.
    /// - Throws: `CLIError`: the agent's own error answer (carried verbatim in `answered`), or
    ///   `agent_unreachable` / `bad_response` when there is no usable answer.
    public func call(_ method: String, _ target: String, body: String? = nil, timeout: Double = 10) throws(CLIError) -> String {
        let connection = try HTTPConnection(address: address, timeout: min(timeout, 5))
        connection.setReadTimeout(timeout)
        let accept = json ? "application/json" : "text/plain"
        try connection.send(method: method, target: target, accept: accept, token: token, body: body.map { Array($0.utf8) })
        let head = try connection.readHead()
        let text = String(decoding: try connection.readBody(head), as: UTF8.self)
        // A stream (a query's answers) comes as NDJSON whatever was asked for; errors as asked.
        guard head.contentType.hasPrefix(accept) || head.contentType.hasPrefix("application/x-ndjson") else { throw notAnAgent(head) }
        guard (200..<300).contains(head.status) else { throw agentError(text, head: head) }
        return text
    }

    /// The error an agent answered (its text or envelope), kept verbatim for printing. Its code
    /// (which decides the exit status) is the envelope's, else the `Rumor-Error-Code` header's.
    func agentError(_ text: String, head: HTTPConnection.Head) -> CLIError {
        // An error answer in the agent's own format is the agent's error, whatever its code.
        var error = CLIError(code: head.errorCode ?? "internal", message: text, hint: "")
        if json {
            error.code = JSONText.string("code", in: text) ?? error.code
            error.message = JSONText.string("message", in: text) ?? text
            error.hint = JSONText.string("hint", in: text) ?? ""
        }
        error.answered = text
        return error
    }

    func notAnAgent(_ head: HTTPConnection.Head) -> CLIError {
        .notAnAgentAPI(at: address, "HTTP \(head.status) with '\(head.contentType)', not a Rumor answer of this CLI's version")
    }

    /// `?name=value&…` with each value percent-encoded (RFC 3986 unreserved characters kept).
    public static func query(_ items: [(String, String?)]) -> String {
        let present = items.compactMap { name, value in value.map { "\(name)=\(percentEncoded($0))" } }
        return present.isEmpty ? "" : "?" + present.joined(separator: "&")
    }

    /// `text` percent-encoded for a URI component (RFC 3986 unreserved characters kept).
    public static func percentEncodedComponent(_ text: String) -> String { percentEncoded(text) }

    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }
}

/// Printing for the CLI, without Foundation.
public enum Output {
    /// Prints `text` on stdout with a final newline.
    public static func print(_ text: String) {
        write(text.hasSuffix("\n") ? text : text + "\n", to: 1)
    }

    /// Prints `text` on stderr with a final newline.
    public static func printError(_ text: String) {
        write(text.hasSuffix("\n") ? text : text + "\n", to: 2)
    }

    /// Writes all of `text` to file descriptor `descriptor` (unbuffered: a watch line is out at once).
    public static func write(_ text: String, to descriptor: Int32) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let count = bytes.withUnsafeBytes { Glibc_write(descriptor, $0.baseAddress, $0.count) }
            let failure = count < 0 ? errno : 0  // only a failed write() sets errno
            if failure == EINTR { continue }
            guard count > 0 else { exit(failure == EPIPE ? 0 : 1) }  // the reader went away
            bytes = bytes.dropFirst(count)
        }
    }

    /// Prints `error` on stderr (the agent's own answer verbatim, or our text or envelope) and
    /// exits with the status `ExitStatus` gives its code.
    public static func fail(_ error: CLIError, json: Bool) -> Never {
        printError(error.answered ?? (json ? error.json : error.text))
        exit(ExitStatus(errorCode: error.code).rawValue)
    }
}

/// An environment variable, or nil.
func environment(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}

@inline(__always) private func Glibc_write(_ descriptor: Int32, _ bytes: UnsafeRawPointer?, _ count: Int) -> Int {
    write(descriptor, bytes, count)
}
