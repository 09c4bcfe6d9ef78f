import Foundation
import RumorAPI
import TOMLKit

/// The config file of `rumor agent --config FILE`: TOML, or JSON when the name ends in `.json`
/// (or the text starts with `{`). Keys are `AgentSetting` keys; an unknown key or a value of the
/// wrong type is refused with an error naming the key and the file, before the agent starts.
public enum ConfigFile {
    /// The settings the file at `path` gives.
    /// - Throws: `AgentError` `bad_config`: the file cannot be read, is not TOML or JSON, names an
    ///   unknown key or gives a value of the wrong type.
    public static func load(_ path: String) throws(AgentError) -> [String: SettingValue] {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist"
            throw AgentError(code: .badConfig, message: "config file \(path) \(reason)", hint: "check the path given to --config")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw AgentError(code: .badConfig, message: "config file \(path) is not UTF-8 text", hint: "write the file as TOML or JSON")
        }
        return try parse(text, path: path)
    }

    /// The settings `text` gives; `path` names the file in errors and decides the format.
    public static func parse(_ text: String, path: String) throws(AgentError) -> [String: SettingValue] {
        let isJSON = path.hasSuffix(".json") || text.drop { $0.isWhitespace }.first == "{"
        let document = isJSON ? try json(text, path: path) : try toml(text, path: path)
        var values: [String: SettingValue] = [:]
        for (key, value) in document.sorted(by: { $0.key < $1.key }) {
            guard let setting = AgentSetting.named(key) else {
                let known = AgentSetting.all.map(\.key)
                let suggestion = known.min { editDistance($0, key) < editDistance($1, key) }.flatMap {
                    editDistance($0, key) <= 2 ? "did you mean '\($0)'? " : nil
                }
                throw AgentError(
                    code: .badConfig, message: "config file \(path): unknown key '\(key)'",
                    hint: "\(suggestion ?? "")keys: \(known.joined(separator: ", "))")
            }
            values[key] = try convert(value, for: setting, path: path)
        }
        return values
    }

    /// A value as the file holds it, before it is checked against its setting.
    enum FileValue: Decodable {
        case string(String)
        case integer(Int)
        case number(Double)
        case boolean(Bool)
        case array([FileValue])
        case table([String: FileValue])
        case other(String)

        var typeName: String {
            switch self {
            case .string: "a string"
            case .integer: "an integer"
            case .number: "a floating-point number"
            case .boolean: "a boolean"
            case .array: "an array"
            case .table: "a table"
            case .other(let name): name
            }
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .other("null")
            } else if let value = try? container.decode(Bool.self) {
                self = .boolean(value)
            } else if let value = try? container.decode(Int.self) {
                self = .integer(value)
            } else if let value = try? container.decode(Double.self) {
                self = .number(value)
            } else if let value = try? container.decode(String.self) {
                self = .string(value)
            } else if let value = try? container.decode([FileValue].self) {
                self = .array(value)
            } else {
                self = .table(try container.decode([String: FileValue].self))
            }
        }

        init(_ value: any TOMLValueConvertible) {
            switch value.type {
            case .string: self = .string(value.string ?? "")
            case .int: self = .integer(value.int ?? 0)
            case .double: self = .number(value.double ?? 0)
            case .bool: self = .boolean(value.bool ?? false)
            case .array: self = .array((value.array.map(Array.init) ?? []).map(FileValue.init))
            case .table: self = .table(Self.table(value.table))
            case .date, .time, .dateTime: self = .other("a \(value.type)")
            }
        }

        static func table(_ table: TOMLTable?) -> [String: FileValue] {
            guard let table else { return [:] }
            var values: [String: FileValue] = [:]
            for key in table.keys {
                if let value = table[key] { values[key] = FileValue(value) }
            }
            return values
        }
    }

    private static func json(_ text: String, path: String) throws(AgentError) -> [String: FileValue] {
        do {
            // Foundation's decoder takes trailing commas and keeps the first of duplicate keys.
            try StrictJSON.check(text)
            return try JSONDecoder().decode([String: FileValue].self, from: Data(text.utf8))
        } catch let problem as StrictJSON.Problem {
            let strictOnly = problem.message.hasPrefix("trailing comma") || problem.message.hasPrefix("duplicate key")
            throw AgentError(
                code: .badConfig, message: "config file \(path) is not a JSON object of settings: \(problem)",
                hint: strictOnly
                    ? "remove the trailing comma, or keep one of the keys given twice (JSON has no defined meaning for either)"
                    : #"write e.g. {"name": "node1", "join": ["10.0.0.1:7946"]}"#)
        } catch {
            throw AgentError(
                code: .badConfig, message: "config file \(path) is not a JSON object of settings: \(error)",
                hint: #"write e.g. {"name": "node1", "join": ["10.0.0.1:7946"]}"#)
        }
    }

    private static func toml(_ text: String, path: String) throws(AgentError) -> [String: FileValue] {
        do {
            return FileValue.table(try TOMLTable(string: text))
        } catch let error as TOMLParseError {
            throw AgentError(
                code: .badConfig,
                message: "config file \(path) is not valid TOML: \(error.description) at line \(error.source.begin.line), column \(error.source.begin.column)",
                hint: #"write e.g. name = "node1" and join = ["10.0.0.1:7946"], or JSON in a .json file"#)
        } catch {
            throw AgentError(code: .badConfig, message: "config file \(path) is not valid TOML: \(error)", hint: "check the file")
        }
    }

    /// Checks the type `value` has against what `setting` takes.
    private static func convert(_ value: FileValue, for setting: AgentSetting, path: String) throws(AgentError) -> SettingValue {
        switch (setting.kind, value) {
        case (.text, .string(let text)), (.duration, .string(let text)):
            return .text(text)
        case (.boolean, .boolean(let flag)):
            return .text(flag ? "true" : "false")
        case (.count, .integer(let count)):
            return .text(String(count))
        case (.list, .array(let items)):
            var texts: [String] = []
            for item in items {
                guard case .string(let text) = item else { throw wrongType(setting, value, path: path) }
                texts.append(text)
            }
            return .list(texts)
        case (.pairs, .table(let pairs)):
            var texts: [String] = []
            for (key, item) in pairs.sorted(by: { $0.key < $1.key }) {
                guard case .string(let text) = item else { throw wrongType(setting, value, path: path) }
                texts.append("\(key)=\(text)")
            }
            return .list(texts)
        default:
            throw wrongType(setting, value, path: path)
        }
    }

    private static func wrongType(_ setting: AgentSetting, _ value: FileValue, path: String) -> AgentError {
        let (wanted, example): (String, String) =
            switch setting.kind {
            case .text: ("a string", #""…""#)
            case .list: ("an array of strings", #"["10.0.0.1:7946", "10.0.0.2:7946"]"#)
            case .boolean: ("a boolean", "false")
            case .count: ("an integer", "64")
            case .duration: ("a duration string", #""24h""#)
            case .pairs: ("a table of strings", #"{ role = "worker" } (TOML) or {"role": "worker"} (JSON)"#)
            }
        let got: String
        switch value {
        case .array: got = setting.kind == .list ? "an array holding something other than strings" : value.typeName
        case .table: got = setting.kind == .pairs ? "a table holding something other than strings" : value.typeName
        default: got = value.typeName
        }
        return AgentError(
            code: .badConfig, message: "config file \(path): \(setting.key) must be \(wanted), not \(got)",
            hint: "e.g. \(setting.key) = \(example)")
    }

    /// Levenshtein distance, for "did you mean".
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in stride(from: 1, through: b.count, by: 1) {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
