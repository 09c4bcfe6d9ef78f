import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import RumorAPI
import Testing

@testable import RumorAgent

/// The local API's rules against abuse, without sockets: the connection table, the cross-site
/// policy and the query check (issue 29).
struct APIAbuseRuleTests {
    // MARK: Connections

    @Test func belowTheLimit_everyConnectionIsAdmitted() {
        var table = ConnectionTable<String>(maximumConnections: 3, maximumStreams: 1)
        for id in 1...3 { #expect(isAdmitted(table.open(id, "c\(id)"))) }
        #expect(table.count == 3)
    }

    @Test func atTheLimit_theConnectionWaitingLongestForAHeadIsClosedForANewcomer() {
        var table = ConnectionTable<String>(maximumConnections: 3, maximumStreams: 1)
        for id in 1...3 { _ = table.open(id, "c\(id)") }
        table.receivedHead(1)  // a request under way is never cut
        guard case .admittedClosing(let closed) = table.open(4, "c4") else {
            Issue.record("expected a connection closed for the newcomer")
            return
        }
        #expect(closed == "c2")
        #expect(table.count == 3)
        guard case .admittedClosing(let next) = table.open(5, "c5") else {
            Issue.record("expected a second one closed")
            return
        }
        #expect(next == "c3")
    }

    @Test func whenEveryConnectionHasARequestUnderWay_aNewcomerIsRefused() {
        var table = ConnectionTable<String>(maximumConnections: 2, maximumStreams: 1)
        _ = table.open(1, "c1")
        _ = table.open(2, "c2")
        table.receivedHead(1)
        table.receivedHead(2)
        guard case .refused = table.open(3, "c3") else {
            Issue.record("expected a refusal")
            return
        }
        #expect(table.count == 2)
    }

    @Test func anAnsweredKeptAliveConnection_waitsAgainFromItsAnswer() {
        var table = ConnectionTable<String>(maximumConnections: 2, maximumStreams: 1)
        _ = table.open(1, "c1")
        table.receivedHead(1)
        _ = table.open(2, "c2")
        table.answered(1)  // waits again, since after c2 began to wait
        guard case .admittedClosing(let closed) = table.open(3, "c3") else {
            Issue.record("expected a connection closed for the newcomer")
            return
        }
        #expect(closed == "c2")
    }

    @Test func closedConnectionsFreeTheirPlace() {
        var table = ConnectionTable<String>(maximumConnections: 1, maximumStreams: 1)
        _ = table.open(1, "c1")
        table.receivedHead(1)
        table.close(1)
        #expect(isAdmitted(table.open(2, "c2")))
    }

    @Test func streamsStopAtTheirLimitUntilOneCloses() {
        var table = ConnectionTable<String>(maximumConnections: 4, maximumStreams: 2)
        let opened = [table.openStream(), table.openStream(), table.openStream()]
        #expect(opened == [true, true, false])
        table.closeStream()
        let again = table.openStream()
        #expect(again)
    }

    @Test func theConnectionLimitFitsTheOpenFileLimit() {
        let limits = APILimits()
        #expect(limits.connections(fitting: 1_048_576) == 512)
        #expect(limits.connections(fitting: 1024) == 512)
        #expect(limits.connections(fitting: 256) == 192)
        #expect(limits.connections(fitting: 64) == limits.maxStreams + 1)
    }

    @Test func streamsMustLeaveRoomForRequests() {
        var limits = APILimits()
        limits.maxStreams = limits.maxConnections
        #expect(throws: AgentError.self) { try limits.validate() }
    }

    // MARK: Cross-site requests

    let policy = CrossSitePolicy(apiHost: "127.0.0.1", apiPort: 7373, allowedHosts: ["rumor.internal"], allowedOrigins: ["https://dash.example"])

    func refusal(
        _ method: HTTPRequest.Method = .get, host: String? = "127.0.0.1:7373", origin: String? = nil, fetchSite: String? = nil,
        contentType: String? = nil
    ) -> String? {
        policy.refusal(method: method, host: host, origin: origin, fetchSite: fetchSite, contentType: contentType)?.reason
    }

    @Test func loopbackNamesTheAPIAddressAndAllowedNamesAreAnswered() {
        for host in ["127.0.0.1:7373", "localhost:7373", "LOCALHOST", "[::1]:7373", "127.0.0.2", "rumor.internal:7373"] {
            #expect(refusal(host: host) == nil, "\(host)")
        }
        #expect(refusal(host: nil) == nil)
    }

    @Test func aForeignHostIsRefused_asDNSRebindingWouldSendIt() {
        for host in ["rebind.evil.example:7373", "evil.example", "127.0.0.1.evil.example", "10.0.0.5:7373"] {
            #expect(refusal(host: host) == "forbidden_host", "\(host)")
        }
    }

    @Test func anAPIOnEveryInterfaceAnswersItsAddressesButNoForeignName() {
        let wildcard = CrossSitePolicy(apiHost: "0.0.0.0", apiPort: 7373, allowedHosts: [], allowedOrigins: [])
        #expect(wildcard.allows(host: "10.0.0.5"))
        #expect(wildcard.allows(host: "fe80::1"))
        #expect(!wildcard.allows(host: "rebind.evil.example"))
    }

    @Test func anAPIOnTheNetworkBehindATokenAnswersAnyHost_butStillNoForeignPage() {
        let remote = CrossSitePolicy(apiHost: "0.0.0.0", apiPort: 7373, allowedHosts: [], allowedOrigins: [], token: "t")
        #expect(remote.refusal(method: .get, host: "server.example:7373", origin: nil, fetchSite: nil, contentType: nil) == nil)
        #expect(remote.refusal(method: .get, host: "server.example:7373", origin: "https://evil.example", fetchSite: nil, contentType: nil)?.reason == "forbidden_origin")
        let local = CrossSitePolicy(apiHost: "127.0.0.1", apiPort: 7373, allowedHosts: [], allowedOrigins: [], token: "t")
        #expect(local.refusal(method: .get, host: "rebind.evil.example", origin: nil, fetchSite: nil, contentType: nil)?.reason == "forbidden_host")
    }

    @Test func theAPIsOwnOriginAndAllowedOriginsPass_othersAreRefused() {
        for origin in ["http://127.0.0.1:7373", "http://localhost:7373", "http://[::1]:7373", "https://dash.example", "https://dash.example/"] {
            #expect(refusal(origin: origin) == nil, "\(origin)")
        }
        for origin in ["https://evil.example", "http://127.0.0.1:8080", "null", "http://localhost", "https://127.0.0.1:7373"] {
            #expect(refusal(origin: origin) == "forbidden_origin", "\(origin)")
        }
    }

    @Test func aCrossSiteFetchWithoutOriginIsRefused() {
        #expect(refusal(fetchSite: "cross-site") == "forbidden_origin")
        #expect(refusal(fetchSite: "same-site") == "forbidden_origin")
        #expect(refusal(fetchSite: "same-origin") == nil)
        #expect(refusal(fetchSite: "none") == nil)
    }

    @Test func stateChangingRequestsNeedJSON() {
        #expect(refusal(.post, contentType: "text/plain") == "content_type")
        #expect(refusal(.post, contentType: nil) == "content_type")
        #expect(refusal(.post, contentType: "application/x-www-form-urlencoded") == "content_type")
        #expect(refusal(.delete, contentType: "multipart/form-data; boundary=x") == "content_type")
        #expect(refusal(.post, contentType: "application/json") == nil)
        #expect(refusal(.post, contentType: "Application/JSON; charset=utf-8") == nil)
        #expect(refusal(.get, contentType: nil) == nil)
    }

    @Test func theTrialsCrossSitePostIsRefusedWhateverItCarries() {
        #expect(refusal(.post, origin: "https://evil.example", fetchSite: "cross-site", contentType: "text/plain") == "forbidden_origin")
        #expect(refusal(.post, origin: "https://evil.example", fetchSite: "cross-site", contentType: "application/json") == "forbidden_origin")
    }

    // MARK: Query strings

    @Test func aQueryThatIsNotUTF8OnceDecodedIsRefused() {
        for query in ["key=%FF", "prefix=a%C3", "%FF=v", "key=ok&prefix=%ED%A0%80"] {
            #expect(throws: AgentError.self, "\(query)") { try QueryText.validate(query[...]) }
        }
    }

    @Test func validQueriesPass() throws {
        for query in ["key=%C3%A9t%C3%A9", "key=plain&stale=true", "prefix=", "key=100%", "key=%2", "", "&&", "key=a%20b"] {
            try QueryText.validate(query[...])
        }
    }

    private func isAdmitted<Handle>(_ admission: ConnectionTable<Handle>.Admission) -> Bool {
        if case .admitted = admission { return true }
        return false
    }
}
