#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import RumorAPI

/// A socket the agent could not listen on: which one, at what address, and the system's reason.
///
/// Thrown by the gossip transport and the API server, which do not know where their address came
/// from; `rumor agent` turns it into a `bind_failed` error naming the flag, variable, config-file
/// key or default that gave the address (`error(from:)`).
public struct BindFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was to listen there.
    public enum Listener: String, Sendable {
        case gossipUDP = "gossip (UDP)"
        case gossipTCP = "gossip (TCP)"
        case api = "the local API"

        /// The setting that gives its address.
        public var settingKey: String { self == .api ? "api" : "bind" }
    }

    public var listener: Listener
    /// `host:port` as configured (`[v6]:port` for IPv6).
    public var address: String
    /// The errno of the failed `bind`/`listen`, when the failure was one.
    public var errnoCode: Int32?
    /// The system's reason ("Address already in use"), or the error's text when there is no errno.
    public var reason: String

    public init(_ listener: Listener, host: String, port: Int, error: any Error) {
        self.listener = listener
        self.address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        if let error = error as? IOError {
            errnoCode = error.errnoCode
            reason = String(cString: strerror(error.errnoCode))
        } else {
            errnoCode = nil
            reason = "\(error)"
        }
    }

    public var description: String { "cannot listen for \(listener.rawValue) on \(address): \(reason)" }

    /// The `bind_failed` error to report: the address, the setting that gave it (`--api`,
    /// `RUMOR_API`, `api in FILE`, or the default) and how to change it.
    public func error(from settings: ResolvedSettings) -> AgentError {
        let key = listener.settingKey
        let setting = AgentSetting.named(key)
        let flag = setting?.flag ?? "--\(key)"
        let variable = setting?.environmentVariable ?? "RUMOR_\(key.uppercased())"
        let (origin, change): (String, String)
        switch settings.entry(key)?.source ?? .defaultValue {
        case .flag: (origin, change) = (flag, "pass another \(flag) HOST:PORT")
        case .environment: (origin, change) = (variable, "set \(variable) to another HOST:PORT")
        case .file(let path): (origin, change) = ("\(key) in \(path)", "change \(key) in \(path)")
        case .defaultValue: (origin, change) = ("the default", "choose one with \(flag) HOST:PORT (or \(variable))")
        }
        let cause: String
        switch errnoCode {
        case EADDRINUSE?: cause = "another process listens there (another rumor agent?): stop it, or \(change)"
        case EACCES?: cause = "ports below 1024 need privileges: \(change) with a higher port"
        case EADDRNOTAVAIL?: cause = "that is not an address of this host: \(change)"
        default: cause = change
        }
        return AgentError(
            code: .bindFailed,
            message: "cannot listen for \(listener.rawValue) on \(address) (from \(origin)): \(reason); nothing was announced to the swarm",
            hint: cause)
    }
}
