/// An error the CLI reports itself (bad arguments, an agent it cannot reach, an answer it cannot
/// read), printed like the agent's errors: `error:`/`hint:` lines, or the JSON error envelope.
public struct CLIError: Error, Sendable, Equatable {
    /// The machine-readable code (one of the agent's `ErrorCode` raw values).
    public var code: String
    public var message: String
    public var hint: String
    /// The agent's own error answer (text, or its JSON envelope), printed as it came.
    public var answered: String?

    public init(code: String, message: String, hint: String, answered: String? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
        self.answered = answered
    }

    /// `{"code":…,"hint":…,"message":…,"status":"error"}`, the agent's envelope.
    public var json: String {
        "{\"code\":\(JSONText.quote(code)),\"hint\":\(JSONText.quote(hint)),\"message\":\(JSONText.quote(message)),\"status\":\"error\"}"
    }

    public var text: String { "error: \(message)\nhint: \(hint)" }

    /// Something at `address` answered, but not as a Rumor agent's API: `what` says how (it
    /// closed the connection unanswered, as a gossip port does; its answer is not HTTP…).
    static func notAnAgentAPI(at address: String, _ what: String) -> CLIError {
        CLIError(
            code: "bad_response",
            message: "\(address) answered, but not as a Rumor agent's API: \(what) (is that the gossip port? the API defaults to 127.0.0.1:7373)",
            hint: "point --api (RUMOR_API) at the address the agent's own --api listens on; `rumor agent --print-config` shows it")
    }
}

/// The little JSON the CLI writes (request bodies) and reads (fields of an error line in a watch
/// stream, the `seq` of a change): no Foundation.
public enum JSONText {
    /// `text` as a JSON string literal.
    public static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let control where control.value < 0x20:
                let hex = String(control.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// An array of strings: `array(["a", "b"])` is `["a","b"]`.
    public static func array(_ strings: [String]) -> String {
        "[" + strings.map(quote).joined(separator: ",") + "]"
    }

    /// An object of already-encoded members, keys sorted: `object(["a": quote("x"), "b": "1"])`.
    public static func object(_ members: [String: String]) -> String {
        "{" + members.sorted { $0.key < $1.key }.map { "\(quote($0.key)):\($0.value)" }.joined(separator: ",") + "}"
    }

    /// The string value of the first `"name":"…"` at the top level of `json`; nil when absent.
    /// Good enough for the flat envelopes the agent writes.
    public static func string(_ name: String, in json: String) -> String? {
        let scalars = Array(json.unicodeScalars)
        let needle = Array(("\"\(name)\"").unicodeScalars)
        var index = 0
        var depth = 0
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "{" || scalar == "[" { depth += 1 }
            if scalar == "}" || scalar == "]" { depth -= 1 }
            if scalar == "\"" {
                if depth == 1, scalars[index...].starts(with: needle) {
                    var cursor = index + needle.count
                    while cursor < scalars.count, scalars[cursor] == " " { cursor += 1 }
                    guard cursor < scalars.count, scalars[cursor] == ":" else { index = cursor; continue }
                    cursor += 1
                    while cursor < scalars.count, scalars[cursor] == " " { cursor += 1 }
                    guard cursor < scalars.count, scalars[cursor] == "\"" else { return nil }
                    return readString(scalars, from: cursor).value
                }
                index = readString(scalars, from: index).end
                continue
            }
            index += 1
        }
        return nil
    }

    /// The unsigned integer value of the first top-level `"name":123` of `json`.
    public static func unsigned(_ name: String, in json: String) -> UInt64? {
        guard let range = json.firstRange(of: "\"\(name)\":") else { return nil }
        return UInt64(json[range.upperBound...].prefix { $0.isASCII && $0.isNumber })
    }

    /// The string starting at the quote at `start`, unescaped, and the index after it.
    private static func readString(_ scalars: [Unicode.Scalar], from start: Int) -> (value: String, end: Int) {
        var out = String.UnicodeScalarView()
        var index = start + 1
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "\"" { return (String(out), index + 1) }
            if scalar == "\\", index + 1 < scalars.count {
                index += 1
                switch scalars[index] {
                case "n": out.append("\n")
                case "r": out.append("\r")
                case "t": out.append("\t")
                case "b": out.append("\u{8}")
                case "f": out.append("\u{c}")
                case "u":
                    let hex = String(String.UnicodeScalarView(scalars[min(index + 1, scalars.count)..<min(index + 5, scalars.count)]))
                    if let value = UInt32(hex, radix: 16), let decoded = Unicode.Scalar(value) { out.append(decoded) }
                    index += 4
                default: out.append(scalars[index])
                }
            } else {
                out.append(scalar)
            }
            index += 1
        }
        return (String(out), index)
    }
}
