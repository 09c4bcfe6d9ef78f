import Foundation
import HTTPTypes
import Hummingbird
import RumorAPI

/// Who may call the API from a browser: nobody but the agent's own status page and the origins
/// allowed on purpose. Without it any web site could drive a loopback API that has no token
/// (the default): a form POST writes a key or makes the node leave, and a DNS name rebound to
/// 127.0.0.1 reads its data.
///
/// The rules, in order (each refusal a 403 `forbidden`, or 415 for the media type):
/// 1. Host MUST name the API: a loopback name (`localhost`, `127.x.x.x`, `::1`), the API's own
///    bind address (any IP address when it binds every interface), or an `allowedHosts` name.
///    A request without Host (HTTP/1.0) passes: a browser always sends one. An API reachable from
///    other hosts has a token (`AgentConfiguration.validate`), which a rebound page cannot send:
///    there any Host passes, so that clients may use the host's DNS names.
/// 2. An Origin MUST be the API's own (`http://` + an allowed Host name + `:` API port) or one of
///    `allowedOrigins`.
/// 3. Without an Origin, `Sec-Fetch-Site` MUST be absent, `same-origin` or `none`: a foreign page's
///    request that carries no Origin (a no-cors GET) is refused too.
/// 4. POST, PUT, PATCH and DELETE MUST carry `Content-Type: application/json`, which a page can
///    only send after a CORS preflight this API never grants.
struct CrossSitePolicy: Sendable {
    /// The API's bind address and port.
    let apiHost: String
    let apiPort: Int
    let allowedHosts: Set<String>
    let allowedOrigins: Set<String>
    /// Whether every Host passes (a non-loopback API behind a token).
    let anyHost: Bool

    init(apiHost: String, apiPort: Int, allowedHosts: [String], allowedOrigins: [String], token: String? = nil) {
        self.apiHost = Self.bare(apiHost.lowercased())
        self.apiPort = apiPort
        let loopback = apiHost == "localhost" || Self.bare(apiHost) == "::1" || apiHost.hasPrefix("127.")
        self.anyHost = token != nil && !loopback
        self.allowedHosts = Set(allowedHosts.map { Self.bare($0.lowercased()) })
        self.allowedOrigins = Set(allowedOrigins.map { $0.lowercased().trimmingSuffix("/") })
    }

    /// Checks a request's Host, Origin, `Sec-Fetch-Site` and media type.
    /// - Returns: the refusal's reason (the `rumor_api_refused` label) and error; nil to let it through.
    func refusal(
        method: HTTPRequest.Method, host: String?, origin: String?, fetchSite: String?, contentType: String?
    ) -> (reason: String, error: AgentError)? {
        if let host, !anyHost, !allows(host: Self.hostName(host)) {
            return (
                "forbidden_host",
                AgentError(
                    code: .forbidden,
                    message: "the Host '\(host)' is not this API's address (\(apiHost):\(apiPort)) nor a loopback name: refused, as a web page's DNS name pointed at this host would be",
                    hint: "call the API as 127.0.0.1:\(apiPort) or localhost:\(apiPort); to use another name on purpose, add it with --api-allowed-host NAME")
            )
        }
        if let origin {
            guard allows(origin: origin) else {
                return (
                    "forbidden_origin",
                    AgentError(
                        code: .forbidden,
                        message: "requests from the web page at \(origin) are refused: only the agent's own status page may call its API from a browser",
                        hint: "open the status page at http://127.0.0.1:\(apiPort)/; to allow a page on purpose, add its origin with --api-allowed-origin \(origin)")
                )
            }
        } else if let fetchSite, !["same-origin", "none"].contains(fetchSite.lowercased()) {
            return (
                "forbidden_origin",
                AgentError(
                    code: .forbidden, message: "a request a browser sent for another site (Sec-Fetch-Site: \(fetchSite)) is refused",
                    hint: "call the API from the command line (`rumor`), a script, or the status page at http://127.0.0.1:\(apiPort)/")
            )
        }
        if [.post, .put, .patch, .delete].contains(method), !Self.isJSON(contentType) {
            return (
                "content_type",
                AgentError(
                    code: .unsupportedMediaType,
                    message: "\(method) needs Content-Type: application/json, not \(contentType.map { "'\($0)'" } ?? "none")",
                    hint: "send the body as JSON with the header Content-Type: application/json (also with no body); an older rumor CLI does not: upgrade it")
            )
        }
        return nil
    }

    func allows(host name: String) -> Bool {
        let name = name.lowercased()
        if name == "localhost" || name == "::1" || name.hasPrefix("127.") && Self.isIPv4(name) { return true }
        if name == apiHost || allowedHosts.contains(name) { return true }
        // Bound to every interface: any address of this host is its own; a DNS name still is not.
        if apiHost == "0.0.0.0" || apiHost == "::" { return Self.isIPv4(name) || name.contains(":") }
        return false
    }

    func allows(origin: String) -> Bool {
        let origin = origin.lowercased().trimmingSuffix("/")
        if allowedOrigins.contains(origin) { return true }
        guard origin.hasPrefix("http://") else { return false }
        let authority = origin.dropFirst("http://".count)
        guard let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]"), Int(authority[authority.index(after: colon)...]) == apiPort
        else { return false }
        return allows(host: Self.bare(String(authority[..<colon])))
    }

    /// `host` from `host:port`, `[v6]:port`, `[v6]` or `host`.
    static func hostName(_ authority: String) -> String {
        if authority.hasPrefix("[") {
            return authority.firstIndex(of: "]").map { String(authority[authority.index(after: authority.startIndex)..<$0]) } ?? authority
        }
        if let colon = authority.firstIndex(of: ":"), authority.lastIndex(of: ":") == colon {
            return String(authority[..<colon])
        }
        return authority
    }

    /// An IPv6 literal without its brackets.
    private static func bare(_ host: String) -> String {
        host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    }

    private static func isIPv4(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { UInt8($0) != nil }
    }

    static func isJSON(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        let mediaType = contentType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        return mediaType == "application/json"
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}

/// Applies `CrossSitePolicy` and `QueryText` to every request, before the token is checked.
struct RequestScreening<Context: RequestContext>: RouterMiddleware {
    let policy: CrossSitePolicy
    /// Where refusals are logged and counted; nil when the router runs without a server.
    let connections: APIConnections?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let (reason, error) = policy.refusal(
            method: request.method, host: request.head.authority, origin: request.headers[.origin],
            fetchSite: request.headers[secFetchSite], contentType: request.headers[.contentType])
        {
            connections?.refused(reason, "refused \(request.method) \(request.uri.path): \(error.message)", [:])
            throw error
        }
        if let query = request.uri.query {
            do {
                try QueryText.validate(query[...])
            } catch {
                connections?.refused("bad_query", "refused \(request.method) \(request.uri.path): \(error.message)", [:])
                throw error
            }
        }
        return try await next(request, context)
    }
}

/// The header a browser sends to say which site a request comes from.
private let secFetchSite = HTTPField.Name("Sec-Fetch-Site")!
