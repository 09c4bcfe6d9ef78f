import Foundation

/// `rumor agent --print-config`: every setting's effective value and where it came from, as a
/// TOML file one can keep (secrets hidden), or as JSON.
public enum EffectiveConfiguration {
    /// The text shown for a secret that is set.
    public static let hidden = "(hidden)"

    /// A TOML document: `key = value  # source`, unset settings as comments.
    /// - Parameter name: the node name in effect (the host name when nothing sets it).
    public static func toml(_ settings: ResolvedSettings, name: String) -> String {
        var lines = ["# rumor agent: effective configuration (flags > environment > config file > defaults)"]
        for row in rows(settings, name: name) {
            guard let value = row.value else {
                lines.append("# \(row.setting.key) is not set: \(row.setting.summary)")
                continue
            }
            lines.append("\(row.setting.key) = \(tomlValue(value, kind: row.setting.kind))  # \(row.source)")
        }
        return lines.joined(separator: "\n")
    }

    /// `{"status":"ok","data":{"settings":[{"key","value","source","flag","env"},…]}}`; an unset
    /// setting has no value.
    public static func json(_ settings: ResolvedSettings, name: String) throws -> String {
        struct Row: Encodable {
            var key: String
            var value: JSONValue?
            var source: String?
            var flag: String
            var env: String
        }
        enum JSONValue: Encodable {
            case text(String), boolean(Bool), count(Int), list([String]), pairs([String: String])
            func encode(to encoder: any Encoder) throws {
                var container = encoder.singleValueContainer()
                switch self {
                case .text(let text): try container.encode(text)
                case .boolean(let flag): try container.encode(flag)
                case .count(let count): try container.encode(count)
                case .list(let items): try container.encode(items)
                case .pairs(let pairs): try container.encode(pairs)
                }
            }
        }
        let encoded = rows(settings, name: name).map { row in
            let value: JSONValue? = row.value.map { value in
                switch row.setting.kind {
                case .boolean: .boolean(value.text == "true")
                case .count: Int(value.text).map(JSONValue.count) ?? .text(value.text)
                case .list: .list(value.items)
                case .pairs: .pairs(pairs(value.items))
                case .text, .duration: .text(value.text)
                }
            }
            return Row(
                key: row.setting.key, value: value, source: row.value == nil ? nil : row.source.description,
                flag: row.setting.flag, env: row.setting.environmentVariable)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(OKEnvelope(data: ["settings": encoded])), as: UTF8.self)
    }

    private struct Row {
        var setting: AgentSetting
        var value: SettingValue?
        var source: SettingSource
    }

    private static func rows(_ settings: ResolvedSettings, name: String) -> [Row] {
        AgentSetting.all.map { setting in
            guard let entry = settings.entry(setting.key) else {
                if setting.key == "name" { return Row(setting: setting, value: .text(name), source: .defaultValue) }
                return Row(setting: setting, value: nil, source: .defaultValue)
            }
            let value = setting.isSecret ? SettingValue.text(hidden) : entry.value
            return Row(setting: setting, value: value, source: entry.source)
        }
    }

    private static func pairs(_ items: [String]) -> [String: String] {
        var pairs: [String: String] = [:]
        for item in items {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            pairs[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        return pairs
    }

    private static func tomlValue(_ value: SettingValue, kind: AgentSetting.Kind) -> String {
        switch kind {
        case .boolean, .count: value.text
        case .text, .duration: quote(value.text)
        case .list: "[" + value.items.map(quote).joined(separator: ", ") + "]"
        case .pairs:
            "{ " + pairs(value.items).sorted { $0.key < $1.key }.map { "\(key($0.key)) = \(quote($0.value))" }
                .joined(separator: ", ") + " }"
        }
    }

    /// A bare TOML key when it can be one, else a quoted key.
    static func key(_ text: String) -> String {
        let bare = !text.isEmpty && text.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-"
        }
        return bare ? text : quote(text)
    }

    /// A TOML basic string.
    static func quote(_ text: String) -> String {
        var quoted = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\t": quoted += "\\t"
            case "\r": quoted += "\\r"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                quoted += String(format: "\\u%04X", scalar.value)
            default: quoted.unicodeScalars.append(scalar)
            }
        }
        return quoted + "\""
    }
}
