import Foundation
import NIOCore
@testable import RumorAgent
import RumorAPI
import Testing

/// A socket that cannot listen is reported as `bind_failed`, naming the address and the setting
/// that gave it: a flag, a variable, a config-file key or the default.
struct BindFailureTests {
    private let taken = IOError(errnoCode: EADDRINUSE, reason: "bind(descriptor:ptr:bytes:)")

    @Test func whenTheAPIPortIsTakenAndCameFromTheFlag_theErrorNamesAddressFlagAndReason() {
        let settings = ResolvedSettings(flags: ["api": .text("127.0.0.1:7400")], environment: [:], file: nil)
        let error = BindFailure(.api, host: "127.0.0.1", port: 7400, error: taken).error(from: settings)
        #expect(error.code == .bindFailed)
        #expect(error.message.hasPrefix("cannot listen for the local API on 127.0.0.1:7400 (from --api): Address already in use"), "\(error.message)")
        #expect(!error.message.contains("errno") && !error.message.contains("descriptor"), "no NIO internals: \(error.message)")
        #expect(error.hint.contains("another process listens there") && error.hint.contains("--api HOST:PORT"), "\(error.hint)")
    }

    @Test func theOriginIsTheVariableTheFileKeyOrTheDefault() {
        let fromVariable = ResolvedSettings(flags: [:], environment: ["RUMOR_API": "127.0.0.1:7400"], file: nil)
        let variable = BindFailure(.api, host: "127.0.0.1", port: 7400, error: taken).error(from: fromVariable)
        #expect(variable.message.contains("(from RUMOR_API)") && variable.hint.contains("set RUMOR_API"), "\(variable)")

        let fromFile = ResolvedSettings(flags: [:], environment: [:], file: (path: "/etc/rumor.toml", values: ["bind": .text("0.0.0.0:7946")]))
        let file = BindFailure(.gossipUDP, host: "0.0.0.0", port: 7946, error: taken).error(from: fromFile)
        #expect(file.message.hasPrefix("cannot listen for gossip (UDP) on 0.0.0.0:7946 (from bind in /etc/rumor.toml)"), "\(file.message)")
        #expect(file.hint.contains("change bind in /etc/rumor.toml"), "\(file.hint)")

        let defaults = ResolvedSettings(flags: [:], environment: [:], file: nil)
        let byDefault = BindFailure(.api, host: "127.0.0.1", port: 7373, error: taken).error(from: defaults)
        #expect(byDefault.message.contains("127.0.0.1:7373 (from the default)"), "\(byDefault.message)")
        #expect(byDefault.hint.contains("--api HOST:PORT (or RUMOR_API)"), "\(byDefault.hint)")
    }

    @Test func aGossipTCPFailureNamesTCPAndTheBindSetting() {
        let settings = ResolvedSettings(flags: ["bind": .text("[::1]:7946")], environment: [:], file: nil)
        let error = BindFailure(.gossipTCP, host: "::1", port: 7946, error: taken).error(from: settings)
        #expect(error.message.hasPrefix("cannot listen for gossip (TCP) on [::1]:7946 (from --bind)"), "\(error.message)")
    }

    @Test func aPrivilegedPortOrAForeignAddressSaysWhy() {
        let settings = ResolvedSettings(flags: ["api": .text("127.0.0.1:80")], environment: [:], file: nil)
        let privileged = BindFailure(.api, host: "127.0.0.1", port: 80, error: IOError(errnoCode: EACCES, reason: "bind"))
        #expect(privileged.error(from: settings).hint.contains("below 1024"))
        let foreign = BindFailure(.api, host: "10.9.9.9", port: 7373, error: IOError(errnoCode: EADDRNOTAVAIL, reason: "bind"))
        #expect(foreign.error(from: settings).hint.contains("not an address of this host"))
    }
}
