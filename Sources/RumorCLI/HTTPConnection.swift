#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A blocking HTTP/1.1 client connection over a plain socket: one request, one response.
///
/// The CLI's whole network stack. It exists so that a `rumor put` loads no Foundation,
/// URLSession or event loop: start to exit costs a few milliseconds, and a `rumor watch` that
/// waits for changes sleeps in `read(2)` instead of spinning.
///
/// An error names the system's reason only from the call that failed, read at once: `errno`
/// is stale after a call that did not fail (a closed connection is a `read` of 0 bytes, not an
/// error), and a stale one once reported "Operation now in progress" from the connect.
final class HTTPConnection {
    /// The response's status and the headers the client reads.
    struct Head {
        var status: Int
        var contentType: String
        var contentLength: Int?
        var chunked: Bool
        /// The other headers, by lowercased name.
        var fields: [String: String] = [:]
        /// The code of an agent's error answer (`Rumor-Error-Code`), text or JSON.
        var errorCode: String?
    }

    private let descriptor: Int32
    private var buffer: [UInt8] = []
    private var position = 0
    /// Whether any byte of an answer has arrived: a peer that closes before the first one
    /// accepted the connection but is no HTTP server (a gossip port closes on an HTTP request).
    private var answered = false
    /// The API address, for error messages.
    let address: String

    /// Connects to `address` (`host:port`, `[v6]:port`), giving up after `timeout` seconds.
    /// - Throws: `CLIError` `bad_arguments` for an address that does not parse or resolve,
    ///   `agent_unreachable` when nothing answers there.
    init(address: String, timeout: Double) throws(CLIError) {
        self.address = address
        let (host, port) = try Self.split(address)
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Darwin)
        hints.ai_socktype = SOCK_STREAM
        #else
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #endif
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, port, &hints, &list) == 0, let first = list else {
            throw CLIError(
                code: "bad_arguments", message: "cannot resolve the API address '\(address)'",
                hint: "use --api HOST:PORT (RUMOR_API), e.g. 127.0.0.1:7373")
        }
        defer { freeaddrinfo(list) }
        var lastError: Int32 = 0
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            let socket = Glibc_socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            guard socket >= 0 else {
                lastError = errno  // socket() failed: errno is its reason
                continue
            }
            if Self.connect(socket, info.pointee.ai_addr, info.pointee.ai_addrlen, timeout: timeout, error: &lastError) {
                var one: Int32 = 1
                setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                descriptor = socket
                return
            }
            close(socket)
        }
        throw CLIError(
            code: "agent_unreachable",
            message: "cannot reach the agent API at \(address): \(systemReason(lastError))",
            hint: "is `rumor agent` running? start one with `rumor agent --name n1`, or point --api (RUMOR_API) at it")
    }

    deinit { close(descriptor) }

    /// Non-blocking connect bounded by `timeout`, then back to blocking.
    private static func connect(
        _ socket: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: socklen_t, timeout: Double, error: inout Int32
    ) -> Bool {
        let flags = fcntl(socket, F_GETFL)
        _ = fcntl(socket, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(socket, F_SETFL, flags) }
        if Glibc_connect(socket, address, length) == 0 { return true }
        let failure = errno  // connect() failed: errno is its reason (EINPROGRESS: still connecting)
        guard failure == EINPROGRESS else {
            error = failure
            return false
        }
        var poller = pollfd(fd: socket, events: Int16(POLLOUT), revents: 0)
        guard poll(&poller, 1, Int32(timeout * 1000)) == 1 else {
            error = ETIMEDOUT
            return false
        }
        var status: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(socket, SOL_SOCKET, SO_ERROR, &status, &size)
        error = status
        return status == 0
    }

    /// `host:port` or `[v6]:port` split for getaddrinfo.
    static func split(_ address: String) throws(CLIError) -> (host: String, port: String) {
        let bad = CLIError(
            code: "bad_arguments", message: "'\(address)' is not a valid API address",
            hint: "use --api HOST:PORT (RUMOR_API), e.g. 127.0.0.1:7373")
        var host: Substring
        var port: Substring
        if address.hasPrefix("[") {
            guard let close = address.firstIndex(of: "]") else { throw bad }
            host = address[address.index(after: address.startIndex)..<close]
            let rest = address[address.index(after: close)...]
            guard rest.hasPrefix(":") else { throw bad }
            port = rest.dropFirst()
        } else {
            guard let colon = address.lastIndex(of: ":") else { throw bad }
            host = address[..<colon]
            port = address[address.index(after: colon)...]
        }
        guard !host.isEmpty, let number = UInt16(port), number > 0 else { throw bad }
        return (String(host), String(port))
    }

    /// Sets how long a read may wait for the agent (nil: forever, for a watch).
    func setReadTimeout(_ seconds: Double?) {
        var value = timeval(tv_sec: 0, tv_usec: 0)
        if let seconds {
            value.tv_sec = Int(seconds)
            value.tv_usec = Int((seconds - Double(Int(seconds))) * 1_000_000)
        }
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends a request; `body` goes as `application/json`. A request other than GET says
    /// `application/json` even without a body: the agent refuses state-changing requests of any
    /// other type (a web page could send those).
    func send(method: String, target: String, accept: String, token: String?, body: [UInt8]?) throws(CLIError) {
        var head = "\(method) \(target) HTTP/1.1\r\nHost: \(address)\r\nAccept: \(accept)\r\nConnection: close\r\n"
        if let token { head += "Authorization: Bearer \(token)\r\n" }
        if body != nil || method != "GET" { head += "Content-Type: application/json\r\nContent-Length: \(body?.count ?? 0)\r\n" }
        head += "\r\n"
        var bytes = Array(head.utf8)
        if let body { bytes += body }
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc_send(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else {
                let failure = count < 0 ? errno : 0  // only a failed send() sets errno
                if failure == EINTR { continue }
                throw lost("sending the request", because: failure == 0 ? "it took no more bytes" : systemReason(failure))
            }
            sent += count
        }
    }

    /// Reads the status line and headers.
    func readHead() throws(CLIError) -> Head {
        var lines: [String] = []
        while true {
            guard let line = try readLine() else {
                guard answered else { throw CLIError.notAnAgentAPI(at: address, "it closed the connection without an HTTP answer") }
                throw lost("reading the answer", because: "the agent closed the connection")
            }
            if line.isEmpty { break }
            lines.append(line)
        }
        let statusParts = lines.first?.split(separator: " ", maxSplits: 2) ?? []
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
            throw CLIError.notAnAgentAPI(at: address, "its answer is not HTTP")
        }
        var head = Head(status: status, contentType: "", contentLength: nil, chunked: false)
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
            switch name {
            case "content-type": head.contentType = String(value)
            case "content-length": head.contentLength = Int(value)
            case "transfer-encoding": head.chunked = value.lowercased().contains("chunked")
            case "rumor-error-code": head.errorCode = String(value)
            default: head.fields[name] = String(value)
            }
        }
        return head
    }

    /// Reads the whole body.
    func readBody(_ head: Head) throws(CLIError) -> [UInt8] {
        var body: [UInt8] = []
        try streamBody(head) { body += $0 }
        return body
    }

    /// Hands the body to `receive` piece by piece as it arrives (chunked, sized, or until the
    /// agent closes the connection).
    func streamBody(_ head: Head, _ receive: ([UInt8]) throws(CLIError) -> Void) throws(CLIError) {
        if head.chunked {
            while true {
                guard let sizeLine = try readLine() else { throw lost("reading the answer", because: "the agent closed the connection") }
                guard let size = Int(sizeLine.split(separator: ";").first.map(String.init) ?? "", radix: 16) else {
                    throw malformed("a chunk size")
                }
                if size == 0 { return }
                try receive(try readExactly(size))
                guard let end = try readLine() else { throw lost("reading the answer", because: "the agent closed the connection") }
                guard end.isEmpty else { throw malformed("the end of a chunk") }
            }
        } else if let length = head.contentLength {
            try receive(try readExactly(length))
        } else {
            while try fill() { try receive(take(buffer.count - position)) }
        }
    }

    // MARK: - Reading

    private func readLine() throws(CLIError) -> String? {
        while true {
            if let newline = buffer[position...].firstIndex(of: UInt8(ascii: "\n")) {
                var end = newline
                if end > position, buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                let line = String(decoding: buffer[position..<end], as: UTF8.self)
                position = newline + 1
                return line
            }
            guard try fill() else { return nil }
        }
    }

    private func readExactly(_ count: Int) throws(CLIError) -> [UInt8] {
        while buffer.count - position < count {
            guard try fill() else { throw lost("reading the answer", because: "the agent closed the connection") }
        }
        return take(count)
    }

    private func take(_ count: Int) -> [UInt8] {
        let bytes = Array(buffer[position..<(position + count)])
        position += count
        return bytes
    }

    /// Reads more bytes into the buffer; false at the end of the stream (a peer that resets the
    /// connection before answering anything ends it too: see `answered`).
    private func fill() throws(CLIError) -> Bool {
        if position > 0, position == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            position = 0
        }
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                buffer += chunk[0..<count]
                answered = true
                return true
            }
            if count == 0 { return false }
            let failure = errno  // read() failed: errno is its reason
            if failure == EINTR { continue }
            if failure == EAGAIN || failure == EWOULDBLOCK {
                throw CLIError(
                    code: "agent_unreachable", message: "the agent at \(address) did not answer in time",
                    hint: "is it overloaded or stopped? `rumor info` shows whether it answers")
            }
            if failure == ECONNRESET, !answered { return false }
            throw lost("reading the answer", because: systemReason(failure))
        }
    }

    /// The connection ended before the answer did; `reason` says how (never a stale errno).
    private func lost(_ doing: String, because reason: String) -> CLIError {
        CLIError(
            code: "agent_unreachable",
            message: "lost the connection to the agent API at \(address) while \(doing): \(reason)",
            hint: "is `rumor agent` still running? `rumor info` shows whether it answers")
    }

    /// The answer broke HTTP's framing at `part`.
    private func malformed(_ part: String) -> CLIError {
        CLIError(
            code: "bad_response", message: "the answer from \(address) has a malformed \(part)",
            hint: "is --api pointing at a Rumor agent's API, of the same version as this CLI?")
    }
}

/// The system's text for `code`, an errno a failed call just set.
private func systemReason(_ code: Int32) -> String {
    String(cString: strerror(code))
}

// The C functions under names that do not collide with methods.
@inline(__always) private func Glibc_socket(_ domain: Int32, _ type: Int32, _ proto: Int32) -> Int32 {
    socket(domain, type, proto)
}

/// `send(2)` without SIGPIPE: a peer that already closed is an EPIPE error to report, not a
/// signal that ends the CLI without a word.
@inline(__always) private func Glibc_send(_ socket: Int32, _ bytes: UnsafeRawPointer?, _ count: Int) -> Int {
    #if canImport(Darwin)
    write(socket, bytes, count)
    #else
    send(socket, bytes, count, Int32(MSG_NOSIGNAL))
    #endif
}

@inline(__always) private func Glibc_connect(_ socket: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: socklen_t) -> Int32 {
    connect(socket, address, length)
}
