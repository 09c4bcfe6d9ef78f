import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore
import RumorAPI

/// The request and response parts of the API's HTTP/1.1 connections (NIOHTTPTypes' enums, named
/// through Hummingbird's channel so that this target needs no extra package).
typealias RequestPart = HTTP1Channel.Value.InboundPart
typealias ResponsePart = HTTP1Channel.Value.OutboundPart

/// Names an async channel's element types (a generic parameter is no member type).
protocol AsyncChannelParts {
    associatedtype InboundPart
    associatedtype OutboundPart
}

extension NIOAsyncChannel: AsyncChannelParts {
    typealias InboundPart = Inbound
    typealias OutboundPart = Outbound
}

/// One API connection's limits, in its channel pipeline right after HTTP decoding: it admits the
/// connection (`APIConnections`), closes it when a request head, a body or the next request takes
/// too long, refuses a body larger than the limit before reading it, stops a body it will not
/// read, and tells streams when their client is gone.
///
/// - A connection waits for a request head from the moment it opens (`headerTimeout`) and after
///   each answer (`idleTimeout`); a head that does not come in time closes it (slowloris).
/// - A body MUST arrive in full within `bodyTimeout` of its head.
/// - A `Content-Length` past `maximumBodyBytes` is answered 413 `too_large` at once, unread; a
///   chunked body stops being read once past it (the route refuses it with 413).
/// - An answer written before its request's body was read in full closes the connection: the
///   rest is not drained.
/// - The client half-closing or the connection closing completes `clientGone`.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = RequestPart
    typealias InboundOut = RequestPart
    typealias OutboundIn = ResponsePart
    typealias OutboundOut = ResponsePart

    private let connections: APIConnections
    private var limits: APILimits { connections.limits }
    private var id: Int?
    private var channel: (any Channel)?
    private var gone: EventLoopPromise<Void>?
    /// Requests whose head arrived and whose answer is not written yet.
    private var requests = 0
    /// Whether the latest request's body was read to its end.
    private var requestComplete = true
    private var bodyBytes = 0
    /// Past the body limit, or refused: read nothing more, pass nothing on.
    private var reading = true
    private var closing = false
    private var timer: Scheduled<Void>?

    init(connections: APIConnections) {
        self.connections = connections
    }

    // MARK: Connection

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { activate(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        activate(context)
        context.fireChannelActive()
    }

    private func activate(_ context: ChannelHandlerContext) {
        guard gone == nil else { return }
        let promise = context.eventLoop.makePromise(of: Void.self)
        gone = promise
        channel = context.channel
        guard let id = connections.open(context.channel, clientGone: promise.futureResult) else {
            refuse(
                context, .serviceUnavailable, .tooManyConnections,
                "this agent's API holds \(limits.maxConnections) connections (its api_max_connections), each with a request under way",
                "retry in a moment; close idle clients, or raise --api-max-connections", wantsText: false, linger: false)
            return
        }
        self.id = id
        schedule(context, after: limits.headerTimeout, reason: "header_timeout")
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish()
    }

    private func finish() {
        timer?.cancel()
        timer = nil
        gone?.succeed()
        if let id, let channel { connections.close(id, channel) }
        id = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            gone?.succeed()
            // Between requests nothing more can come: close rather than wait for the idle timeout.
            if requests == 0 { close(context) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard reading, !closing else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            timer?.cancel()
            requests += 1
            requestComplete = false
            bodyBytes = 0
            if let id { connections.receivedHead(id) }
            if let text = head.headerFields[.contentLength], let length = Int(text), length > limits.maximumBodyBytes {
                connections.refused(
                    "too_large", "refused a request body of \(length) bytes (Content-Length) before reading it: the limit is \(limits.maximumBodyBytes)",
                    ["path": "\(head.path ?? "")"])
                refuse(
                    context, .contentTooLarge, .tooLarge,
                    "the request body (\(length) bytes) exceeds \(limits.maximumBodyBytes) bytes; it was not read",
                    "send a smaller body: split a batch into several", wantsText: head.headerFields[.accept]?.hasPrefix("text/plain") == true)
                return
            }
            if head.headerFields[.contentLength].map({ $0 != "0" }) ?? (head.headerFields[.transferEncoding] != nil) {
                schedule(context, after: limits.bodyTimeout, reason: "body_timeout")
            }
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
            if bodyBytes > limits.maximumBodyBytes {
                // Pass this part on, so that a route reading the body fails at once (413), and read no more.
                reading = false
                connections.refused(
                    "too_large", "stopped reading a chunked request body past \(limits.maximumBodyBytes) bytes", [:])
            }
        case .end:
            requestComplete = true
            timer?.cancel()
        }
        context.fireChannelRead(data)
    }

    func read(context: ChannelHandlerContext) {
        if reading, !closing { context.read() }
    }

    // MARK: Answers

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        requests = max(0, requests - 1)
        guard requests == 0 else {
            context.write(data, promise: promise)
            return
        }
        guard requestComplete else {
            // The answer came before the body: close rather than read the rest.
            context.writeAndFlush(data, promise: promise)
            closeUnread(context)
            return
        }
        context.write(data, promise: promise)
        if let id { connections.answered(id) }
        schedule(context, after: limits.idleTimeout, reason: "idle_timeout")
    }

    // MARK: Timers and refusals

    private func schedule(_ context: ChannelHandlerContext, after delay: Duration, reason: String) {
        timer?.cancel()
        let loop = context.eventLoop.assumeIsolated()
        timer = loop.scheduleTask(in: TimeAmount(delay)) { [self] in
            timer = nil
            guard !closing else { return }
            let what =
                switch reason {
                case "header_timeout": "sent no complete request head within api_header_timeout (\(limits.headerTimeout))"
                case "body_timeout": "did not send its request body within api_body_timeout (\(limits.bodyTimeout))"
                default: "sent no request for api_idle_timeout (\(limits.idleTimeout))"
                }
            connections.refused(
                reason, "closed an API connection that \(what)",
                ["remote": "\(context.channel.remoteAddress.map { "\($0)" } ?? "?")"])
            close(context)
        }
    }

    private func close(_ context: ChannelHandlerContext) {
        guard !closing else { return }
        closing = true
        timer?.cancel()
        context.close(promise: nil)
    }

    /// Answers an error itself (the request goes no further) and closes the connection.
    private func refuse(
        _ context: ChannelHandlerContext, _ status: HTTPResponse.Status, _ code: ErrorCode, _ message: String, _ hint: String,
        wantsText: Bool, linger: Bool = true
    ) {
        reading = false
        let body = ErrorEnvelope.body(code, message: message, hint: hint, asText: wantsText)
        var fields = HTTPFields()
        fields[.contentType] = wantsText ? "text/plain; charset=utf-8" : "application/json"
        fields[.contentLength] = String(body.readableBytes)
        fields[.connection] = "close"
        fields[APIServer.errorCode] = code.rawValue
        context.write(wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        guard linger else {
            // Refused before its request: nothing to wait for, and the descriptor is wanted back.
            closing = true
            reading = false
            timer?.cancel()
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
            return
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        closeUnread(context)
    }

    /// How long a connection closed with a request body unread stays half-open: a client still
    /// sending would otherwise get a reset that may discard the answer before it reads it.
    static let linger: TimeAmount = .seconds(2)

    /// Closes a connection whose request is not read in full: the answer (already written) and
    /// a FIN go out, nothing more is read, and the socket closes after `linger`.
    private func closeUnread(_ context: ChannelHandlerContext) {
        guard !closing else { return }
        closing = true
        reading = false
        timer?.cancel()
        // Lingering, it may be closed for a newcomer like a connection waiting for a head.
        if let id { connections.answered(id) }
        context.close(mode: .output, promise: nil)
        let loop = context.eventLoop.assumeIsolated()
        timer = loop.scheduleTask(in: Self.linger) { context.close(promise: nil) }
    }
}
