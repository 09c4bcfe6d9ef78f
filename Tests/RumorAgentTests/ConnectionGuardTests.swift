import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOEmbedded
import RumorAPI
import Testing

@testable import RumorAgent

/// One API connection's limits on an embedded channel: time moves only when the test moves it,
/// so every timeout edge is exact.
struct ConnectionGuardTests {
    func connections(maxConnections: Int = 8, maxStreams: Int = 2) -> APIConnections {
        var limits = APILimits()
        limits.maxConnections = maxConnections
        limits.maxStreams = maxStreams
        var logger = Logger(label: "test.api")
        logger.logLevel = .critical
        return APIConnections(limits: limits, logger: logger)
    }

    func open(_ connections: APIConnections) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(handler: ConnectionGuard(connections: connections))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    func head(_ method: HTTPRequest.Method = .get, _ path: String = "/v1/health", _ fields: HTTPFields = [:]) -> RequestPart {
        .head(HTTPRequest(method: method, scheme: nil, authority: "127.0.0.1:7373", path: path, headerFields: fields))
    }

    @Test func aConnectionThatSendsNoHead_isClosedAtTheHeaderTimeout() throws {
        let channel = try open(connections())
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(9_999))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
    }

    @Test func aHeadInTimeIsServed_thenTheIdleConnectionClosesAtTheIdleTimeout() throws {
        let channel = try open(connections())
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        try channel.writeInbound(head())
        try channel.writeInbound(RequestPart.end(nil))
        channel.embeddedEventLoop.advanceTime(by: .seconds(30))
        #expect(channel.isActive, "a request under way has no timeout here")
        try channel.writeOutbound(ResponsePart.head(HTTPResponse(status: .ok)))
        try channel.writeOutbound(ResponsePart.end(nil))
        channel.embeddedEventLoop.advanceTime(by: .seconds(59))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }

    @Test func aBodyThatDoesNotArriveInTime_closesTheConnection() throws {
        let channel = try open(connections())
        try channel.writeInbound(head(.post, "/v1/kv/put", [.contentLength: "10", .contentType: "application/json"]))
        try channel.writeInbound(RequestPart.body(ByteBuffer(string: "{\"k")))
        channel.embeddedEventLoop.advanceTime(by: .seconds(30))
        #expect(!channel.isActive)
    }

    @Test func aContentLengthPastTheLimit_isAnswered413UnreadAndNothingReachesTheRoute() throws {
        let channel = try open(connections())
        try channel.writeInbound(head(.post, "/v1/kv/put", [.contentLength: String(200 << 20), .contentType: "application/json"]))
        #expect(try channel.readInbound(as: RequestPart.self) == nil, "the head goes no further")
        guard case .head(let response) = try channel.readOutbound(as: ResponsePart.self) else {
            Issue.record("expected a response head")
            return
        }
        #expect(response.status == .contentTooLarge)
        #expect(response.headerFields[APIServer.errorCode] == "too_large")
        guard case .body(let body) = try channel.readOutbound(as: ResponsePart.self) else {
            Issue.record("expected a body")
            return
        }
        #expect(String(buffer: body).contains("\"code\":\"too_large\""))
        channel.embeddedEventLoop.advanceTime(by: ConnectionGuard.linger)
        #expect(!channel.isActive)
    }

    @Test func anAnswerBeforeTheBodyEnds_closesTheConnectionInsteadOfDrainingIt() throws {
        let channel = try open(connections())
        try channel.writeInbound(head(.post, "/v1/kv/put", [.transferEncoding: "chunked", .contentType: "application/json"]))
        try channel.writeInbound(RequestPart.body(ByteBuffer(string: "{")))
        try channel.writeOutbound(ResponsePart.head(HTTPResponse(status: .badRequest)))
        try channel.writeOutbound(ResponsePart.end(nil))
        channel.embeddedEventLoop.advanceTime(by: ConnectionGuard.linger)
        #expect(!channel.isActive)
    }

    @Test func theClientHalfClosingMidAnswer_tellsTheStream() throws {
        let connections = connections()
        let channel = try open(connections)
        try channel.writeInbound(head(.get, "/v1/kv/watch"))
        try channel.writeInbound(RequestPart.end(nil))
        let connection = try #require(connections.connection(for: channel))
        let gone = Flag()
        connection.clientGone.whenComplete { _ in gone.value = true }
        #expect(!gone.value)
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(gone.value)
        #expect(channel.isActive, "a request under way is answered first")
    }

    @Test func pastTheLimit_theConnectionWaitingLongestIsClosedForTheNewcomer() throws {
        let connections = connections(maxConnections: 3)
        let busy = try open(connections)
        try busy.writeInbound(head())
        let waiting = try open(connections)
        let another = try open(connections)
        let newcomer = try open(connections)
        #expect(busy.isActive && another.isActive && newcomer.isActive)
        #expect(!waiting.isActive)
        #expect(connections.refusalCounts["closed_for_newcomer"] == 1)
    }

    @Test func whenEveryConnectionHasARequestUnderWay_theNewcomerGets503() throws {
        let connections = connections(maxConnections: 2)
        for _ in 0..<2 { try open(connections).writeInbound(head()) }
        let newcomer = try open(connections)
        guard case .head(let response) = try newcomer.readOutbound(as: ResponsePart.self) else {
            Issue.record("expected a response head")
            return
        }
        #expect(response.status == .serviceUnavailable)
        #expect(response.headerFields[APIServer.errorCode] == "too_many_connections")
        #expect(!newcomer.isActive)
    }

    @Test func streamsPastTheirLimitAreRefused() throws {
        let connections = connections(maxStreams: 1)
        let slot = try connections.openStream()
        #expect(throws: AgentError.self) { _ = try connections.openStream() }
        slot.release()
        _ = try connections.openStream()
    }
}

/// Set by a callback on the embedded event loop, read by the test on the same thread.
final class Flag: @unchecked Sendable {
    var value = false
}

/// The router's screening, driven without a socket: the requests refused before any route runs.
struct APIScreeningTests {
    func answer(
        _ method: HTTPRequest.Method, _ path: String, _ fields: HTTPFields, host: String = "127.0.0.1:7373", body: String = ""
    ) async throws -> (HTTPResponse.Status, String) {
        var configuration = AgentConfiguration(name: "screened")
        configuration.bindHost = "127.0.0.1"
        configuration.bindPort = 0
        var logger = Logger(label: "test.screening")
        logger.logLevel = .critical
        let agent = try Agent(configuration: configuration, logger: logger)
        let policy = CrossSitePolicy(apiHost: "127.0.0.1", apiPort: 7373, allowedHosts: [], allowedOrigins: [])
        let responder = APIServer.router(control: agent, token: nil, policy: policy).buildResponder()
        let request = Request(
            head: HTTPRequest(method: method, scheme: "http", authority: host, path: path, headerFields: fields),
            body: RequestBody(buffer: ByteBuffer(string: body)))
        let response = try await responder.respond(to: request, context: APIRequestContext(logger: logger))
        let sink = Sink()
        try await response.body.write(Collector(sink: sink))
        return (response.status, String(buffer: sink.buffer))
    }

    final class Sink: @unchecked Sendable {
        var buffer = ByteBuffer()
    }

    struct Collector: ResponseBodyWriter {
        let sink: Sink
        mutating func write(_ part: ByteBuffer) async throws { sink.buffer.writeImmutableBuffer(part) }
        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }

    @Test func aCrossSiteTextPlainPost_isForbiddenBeforeItsRoute() async throws {
        let (status, body) = try await answer(
            .post, "/v1/kv/put", [.contentType: "text/plain", .origin: "https://evil.example"], body: #"{"key":"k","value":"v"}"#)
        #expect(status == .forbidden)
        #expect(body.contains(#""code":"forbidden""#))
    }

    @Test func aPostWithoutJSON_is415WithAHint() async throws {
        let (status, body) = try await answer(.post, "/v1/leave", [:])
        #expect(status == .unsupportedMediaType)
        #expect(body.contains("application/json"))
    }

    @Test func aForeignHost_isForbidden() async throws {
        let (status, _) = try await answer(.get, "/v1/openapi.json", [:], host: "rebind.evil.example:7373")
        #expect(status == .forbidden)
    }

    @Test func aQueryThatIsNotUTF8_is400() async throws {
        let (status, body) = try await answer(.get, "/v1/kv/get?key=%FF", [:])
        #expect(status == .badRequest)
        #expect(body.contains("UTF-8"))
    }

    @Test func aSameOriginRequest_passes() async throws {
        let (status, _) = try await answer(.get, "/v1/openapi.json", [.origin: "http://127.0.0.1:7373"])
        #expect(status == .ok)
    }
}
