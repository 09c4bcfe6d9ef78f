import RumorAPI

/// The local API's limits: how many connections and streams it holds, how long a client may take
/// to send a request, and which Host names and Origins it answers. Each is a setting of
/// `rumor agent` (`AgentSetting.all`: `api_max_connections`, `api_header_timeout`, …).
///
/// The defaults hold a loopback API against a local abuser (README "Local API"): 2,000 half-sent
/// requests under `ulimit -n 1024` leave `rumor get` answering within 100 ms.
public struct APILimits: Sendable, Equatable {
    /// Connections held at once. Past it a new connection closes the one that has waited longest
    /// for a request head; when every connection has a request under way, the new one gets 503
    /// `too_many_connections` and is closed. Default 512 (lowered at start to fit the open-file limit).
    public var maxConnections = 512
    /// Streams (watch, events, monitor, query) open at once; past it 503 `too_many_streams`.
    /// MUST be below `maxConnections`, so that short requests always find room. Default 128.
    public var maxStreams = 128
    /// A connection that has not sent a complete request head this long after it opened is
    /// closed (slowloris). Default 10 s.
    public var headerTimeout: Duration = .seconds(10)
    /// A kept-alive connection with no request for this long is closed. Default 60 s.
    public var idleTimeout: Duration = .seconds(60)
    /// A request body that has not arrived in full this long after its head is cut off and its
    /// connection closed. Default 30 s (64 MiB, the largest body, at 2 MiB/s).
    public var bodyTimeout: Duration = .seconds(30)
    /// How often a server-sent-event stream with nothing to say sends a comment line (`:`), so
    /// that a dead reader is found by the write. Default 15 s. NDJSON streams send none: their
    /// readers need not expect blank lines, and a reader that closes is seen at once anyway.
    public var streamKeepAlive: Duration = .seconds(15)
    /// Host names the API answers besides its own address and loopback names (a name a browser
    /// uses for it on purpose). Default none.
    public var allowedHosts: [String] = []
    /// Origins (`scheme://host:port`) of web pages allowed to call the API, besides the API's own.
    /// Default none.
    public var allowedOrigins: [String] = []
    /// The largest request body (`too_large` past it, refused before it is read).
    public var maximumBodyBytes = APIRequests.maximumBodyBytes

    public init() {}

    /// Checks the rules the limits must satisfy together.
    /// - Throws: `AgentError` `bad_config` naming the settings; nothing is changed.
    public func validate() throws(AgentError) {
        guard maxStreams >= 1, maxConnections >= 2, maxStreams < maxConnections else {
            throw AgentError(
                code: .badConfig,
                message: "api_max_streams (\(maxStreams)) must be at least 1 and below api_max_connections (\(maxConnections))",
                hint: "streams hold their connections: leave room for short requests, e.g. --api-max-streams 128 --api-max-connections 512")
        }
        for (name, value) in [
            ("api_header_timeout", headerTimeout), ("api_idle_timeout", idleTimeout), ("api_body_timeout", bodyTimeout),
            ("api_stream_keepalive", streamKeepAlive),
        ] where value <= .zero {
            throw AgentError(code: .badConfig, message: "\(name) must be longer than 0", hint: "e.g. 10s")
        }
    }

    /// The connection limit that fits `openFiles` descriptors: a quarter of them stay for the
    /// agent's own files, sockets and streams to peers.
    public func connections(fitting openFiles: UInt64) -> Int {
        let room = Int(clamping: openFiles - openFiles / 4)
        return max(maxStreams + 1, min(maxConnections, room))
    }
}
