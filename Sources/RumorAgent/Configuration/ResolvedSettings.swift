import Foundation

/// Where a setting's effective value came from.
public enum SettingSource: Sendable, Hashable, CustomStringConvertible {
    case flag
    case environment
    case file(String)
    case defaultValue

    public var description: String {
        switch self {
        case .flag: "flag"
        case .environment: "environment"
        case .file(let path): "file \(path)"
        case .defaultValue: "default"
        }
    }
}

/// Every setting's effective value and its source, by precedence: flags, then environment
/// variables, then the config file, then defaults.
public struct ResolvedSettings: Sendable {
    public struct Entry: Sendable {
        public let setting: AgentSetting
        public let value: SettingValue
        public let source: SettingSource
    }

    /// The settings that have a value, in `AgentSetting.all` order.
    public let entries: [Entry]

    /// - Parameters:
    ///   - flags: the values given on the command line, by setting key.
    ///   - environment: the process environment (`RUMOR_<KEY>`; empty counts as unset; lists and
    ///     pairs are comma-separated).
    ///   - file: the values the config file gives, by key, and its path.
    public init(flags: [String: SettingValue], environment: [String: String], file: (path: String, values: [String: SettingValue])?) {
        entries = AgentSetting.all.compactMap { setting in
            if let value = flags[setting.key] {
                return Entry(setting: setting, value: value, source: .flag)
            }
            if let text = environment[setting.environmentVariable], !text.isEmpty {
                let value: SettingValue
                switch setting.kind {
                case .list, .pairs:
                    value = .list(text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
                default:
                    value = .text(text)
                }
                return Entry(setting: setting, value: value, source: .environment)
            }
            if let file, let value = file.values[setting.key] {
                return Entry(setting: setting, value: value, source: .file(file.path))
            }
            return setting.defaultValue.map { Entry(setting: setting, value: $0, source: .defaultValue) }
        }
    }

    /// The effective text of the setting `key`, nil when nothing sets it.
    public func text(_ key: String) -> String? { entry(key)?.value.text }

    /// The effective items of the list setting `key`.
    public func items(_ key: String) -> [String] { entry(key)?.value.items ?? [] }

    /// The flag, variable or key that gave `key` its value, for error messages: `--bind`,
    /// `RUMOR_BIND`, `bind in FILE`.
    public func origin(_ key: String) -> String {
        guard let entry = entry(key) else { return "--" + key }
        switch entry.source {
        case .flag, .defaultValue: return entry.setting.flag
        case .environment: return entry.setting.environmentVariable
        case .file(let path): return "\(key) in \(path)"
        }
    }

    public func entry(_ key: String) -> Entry? { entries.first { $0.setting.key == key } }
}
