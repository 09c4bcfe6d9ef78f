import Foundation
import Logging
import NIOConcurrencyHelpers

/// The agent's log, live, for `rumor monitor` (`GET /v1/monitor`): every line the agent logs at
/// its `--log-level` or above goes to each open monitor whose own level it reaches. A monitor
/// that falls `backlog` lines behind loses the oldest.
public final class LogMonitor: Sendable {
    static let backlog = 1024

    private struct Subscriber {
        var level: Logger.Level
        var continuation: AsyncStream<String>.Continuation
    }

    private let subscribers = NIOLockedValueBox([Int: Subscriber]())
    private let next = NIOLockedValueBox(0)

    public init() {}

    /// Lines logged from now on at `level` or above, until the stream is dropped.
    public func lines(from level: Logger.Level) -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(Self.backlog))
        let id = next.withLockedValue { value -> Int in
            value += 1
            return value
        }
        subscribers.withLockedValue { $0[id] = Subscriber(level: level, continuation: continuation) }
        continuation.onTermination = { [weak self] _ in self?.subscribers.withLockedValue { $0[id] = nil } }
        return stream
    }

    var isWatched: Bool { !subscribers.withLockedValue { $0.isEmpty } }

    func publish(_ line: String, level: Logger.Level) {
        for subscriber in subscribers.withLockedValue({ Array($0.values) }) where level >= subscriber.level {
            subscriber.continuation.yield(line)
        }
    }
}

/// Logs through `base` and, while someone watches, to the monitor too, in the same format as
/// the standard-error log (`TIME LEVEL LABEL: METADATA MESSAGE`).
public struct MonitoredLogHandler: LogHandler {
    private var base: any LogHandler
    private let label: String
    private let monitor: LogMonitor

    public init(base: any LogHandler, label: String, monitor: LogMonitor) {
        self.base = base
        self.label = label
        self.monitor = monitor
    }

    public var logLevel: Logger.Level {
        get { base.logLevel }
        set { base.logLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { base.metadata }
        set { base.metadata = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { base[metadataKey: key] }
        set { base[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        base.log(event: event)
        guard monitor.isWatched else { return }
        let merged = base.metadata.merging(event.metadata ?? [:]) { $1 }
        let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let time = Date().formatted(.iso8601)
        monitor.publish("\(time) \(event.level) \(label): \(fields.isEmpty ? "" : fields + " ")\(event.message)", level: event.level)
    }
}
