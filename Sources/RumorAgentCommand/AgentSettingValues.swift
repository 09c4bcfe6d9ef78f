import RumorCLI
import RumorAgent
import RumorCore

extension AgentCommand {
    /// The API's limits from their settings (`api_max_connections`…).
    func apiLimits(_ settings: ResolvedSettings) throws -> APILimits {
        var limits = APILimits()
        func count(_ key: String) throws -> Int? {
            guard let text = settings.text(key) else { return nil }
            guard let count = Int(text), count >= 1 else {
                throw AgentError(
                    code: .badArguments, message: "\(settings.origin(key)) '\(text)' is not a positive count",
                    hint: "e.g. \(AgentSetting.named(key)?.flag ?? key) \(AgentSetting.named(key)?.defaultValue?.text ?? "1")")
            }
            return count
        }
        limits.maxConnections = try count("api_max_connections") ?? limits.maxConnections
        limits.maxStreams = try count("api_max_streams") ?? limits.maxStreams
        limits.headerTimeout = try settings.duration("api_header_timeout") ?? limits.headerTimeout
        limits.idleTimeout = try settings.duration("api_idle_timeout") ?? limits.idleTimeout
        limits.bodyTimeout = try settings.duration("api_body_timeout") ?? limits.bodyTimeout
        limits.streamKeepAlive = try settings.duration("api_stream_keepalive") ?? limits.streamKeepAlive
        limits.allowedHosts = settings.items("api_allowed_hosts")
        limits.allowedOrigins = settings.items("api_allowed_origins")
        return limits
    }
}

extension ResolvedSettings {
    /// A `true`/`false` setting, `fallback` when not given; the error names the flag, variable
    /// or file key.
    func boolean(_ key: String, default fallback: Bool) throws(AgentError) -> Bool {
        guard let text = text(key) else { return fallback }
        switch text.lowercased() {
        case "true": return true
        case "false": return false
        default: throw AgentError(code: .badArguments, message: "\(origin(key)) '\(text)' is not true or false", hint: "use true or false")
        }
    }

    /// A duration setting (`30s`, `5m`, `24h`, plain seconds), nil when not given; the error
    /// names the flag, variable or file key.
    func duration(_ key: String) throws(AgentError) -> Duration? {
        guard let text = text(key) else { return nil }
        do {
            return .milliseconds(Int64(try parseDuration(text) * 1000))
        } catch {
            throw AgentError(code: .badArguments, message: "\(origin(key)): \(error.message)", hint: error.hint)
        }
    }
}
