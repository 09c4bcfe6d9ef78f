import Foundation
import RumorCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Whether the agent's start has been announced, and what it waits for.
struct StartupAnnouncement {
    /// The node has started (its readiness is decided: ready, or syncing).
    var nodeStarted = false
    /// The API socket listens (`APIServer`'s `onListening`).
    var apiListening = false
    var announced = false
}

/// Readiness in the agent: `GET /v1/health` reports it, reads refuse `not_ready` while the node
/// is syncing (the API's policy, `APIRoute`), `rumor wait --ready` waits for it, and the start
/// is announced once the API listens — with `wait_ready`, once the node is ready too.
///
/// The start announcement, for scripts and service managers: one line on standard output,
/// `rumor agent up: NAME, API HOST:PORT, ready (REASON)` (or `syncing (…)` without
/// `wait_ready`), and `READY=1` to systemd's `NOTIFY_SOCKET` when set (`Type=notify` units).
extension Agent {
    /// This node's readiness now; with `limit`, waits up to that long for it to become ready.
    public func readiness(waitingUpTo limit: Duration?) async -> ReadinessSnapshot {
        if let limit, limit > .zero, !node.readiness.isReady, !stopped {
            let id = newCommandID()
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                readyWaiters[id] = continuation
                Task { [weak self] in
                    try? await Task.sleep(for: limit)
                    await self?.wakeReadyWaiter(id)
                }
            }
        }
        return readinessSnapshot
    }

    var readinessSnapshot: ReadinessSnapshot {
        let timeout = Self.seconds(configuration.readyTimeout)
        let time = time
        let clock = ClockSnapshot(node.clockVerdict(at: time))
        switch node.readiness {
        case .syncing(let since):
            return ReadinessSnapshot(
                node: node.name, ready: false, syncingSeconds: Self.seconds(time.now - since), readyTimeoutSeconds: timeout,
                reason: nil, clock: clock)
        case .ready(let reason):
            return ReadinessSnapshot(
                node: node.name, ready: true, syncingSeconds: nil, readyTimeoutSeconds: timeout, reason: reason.description,
                clock: clock)
        }
    }

    /// The node became ready (`NodeEffect.ready`).
    func becameReady() {
        wakeReadyWaiters()
        announceStartIfDue()
        Self.notifyServiceManager("STATUS=\(readinessSnapshot.text)")
    }

    /// Wakes every `readiness(waitingUpTo:)` (the node is ready, or the agent stops).
    func wakeReadyWaiters() {
        let waiters = readyWaiters
        readyWaiters = [:]
        for waiter in waiters.values { waiter.resume() }
    }

    private func wakeReadyWaiter(_ id: CommandID) {
        readyWaiters.removeValue(forKey: id)?.resume()
    }

    /// The node has started: its readiness says whether it syncs first.
    func nodeStarted() {
        startup.nodeStarted = true
        announceStartIfDue()
    }

    /// The API socket listens.
    public func apiListening() {
        startup.apiListening = true
        announceStartIfDue()
    }

    /// Announces the start once the API listens and, with `wait_ready`, the node is ready.
    private func announceStartIfDue() {
        guard startup.apiListening, startup.nodeStarted, !startup.announced, node.readiness.isReady || !configuration.waitReady
        else { return }
        startup.announced = true
        let readiness = readinessSnapshot
        let state = readiness.ready
            ? "ready (\(readiness.reason ?? ""))"
            : "syncing (reads answer not_ready until a peer answers, at most \(Self.durationText(configuration.readyTimeout)))"
        let line = "rumor agent up: \(node.name), API \(configuration.apiHost):\(configuration.apiPort), \(state)"
        logger.info("\(line)")
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
        Self.notifyServiceManager("READY=1\nSTATUS=\(readiness.text)")
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.nanosecondsClamped) / 1e9
    }

    static func durationText(_ duration: Duration) -> String {
        let milliseconds = duration.nanosecondsClamped / 1_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(milliseconds) ms"
    }

    /// Sends `state` to systemd's notification socket (`sd_notify(3)`), when NOTIFY_SOCKET is
    /// set: a path, or an abstract socket name starting with `@`. Best effort: a failure is
    /// ignored, as sd_notify's callers do.
    static func notifyServiceManager(_ state: String) {
        guard let path = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"], !path.isEmpty else { return }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var name = Array(path.utf8)
        if name.first == UInt8(ascii: "@") { name[0] = 0 }
        guard name.count < MemoryLayout.size(ofValue: address.sun_path) else { return }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: name) }
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + name.count + (name.first == 0 ? 0 : 1))
        let payload = Array(state.utf8)
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(descriptor, payload, payload.count, 0, $0, length) }
        }
    }
}
