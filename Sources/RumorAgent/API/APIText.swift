import Foundation
import Hummingbird
import NIOCore
import RumorAPI

/// The text rendering of API answers, for clients that send `Accept: text/plain` (the `rumor`
/// CLI without `--json`): what a person reads, from the same values the JSON envelope carries.
/// Keeping it here lets the CLI stay a thin HTTP client that prints what it receives.
enum APIText {
    static func wantsText(_ request: Request) -> Bool {
        request.headers[.accept]?.hasPrefix("text/plain") == true
    }

    static func response(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text.hasSuffix("\n") || text.isEmpty ? text : text + "\n")))
    }

    static func error(_ code: ErrorCode, message: String, hint: String) -> String {
        "error: \(message)\nhint: \(hint)\n"
    }

    /// A query's first line, as `serf query` prints it.
    static func query(_ dispatch: QueryDispatch) -> String {
        "Query '\(dispatch.name)' dispatched\n"
    }

    /// An answer line, as `serf query` prints it (one trailing newline of a response dropped).
    static func query(_ answer: QueryAnswerSnapshot, acknowledged: Bool) -> String {
        switch answer.type {
        case "ack": return "Ack from '\(answer.from ?? "")'\n"
        case "response":
            var payload = answer.payload ?? ""
            if payload.hasSuffix("\n") { payload.removeLast() }
            return "Response from '\(answer.from ?? "")': \(payload)\n"
        default:
            return (acknowledged ? "Total Acks: \(answer.acks ?? 0)\n" : "") + "Total Responses: \(answer.responses ?? 0)\n"
        }
    }

    static func members(_ members: [MemberSnapshot]) -> String {
        TextTable.render(
            ["NAME", "ADDRESS", "STATE", "INCARNATION", "CLOCK", "RTT", "TAGS"],
            members.map { member in
                let tags = member.tags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                let rtt = member.rttMs.map { String(format: "%.3f ms", $0) } ?? "-"
                return [member.name, member.address, member.state, String(member.incarnation), clockOffset(member), rtt, tags]
            })
    }

    /// A coordinate, one field a line, as `serf`'s RPC reports its four fields.
    static func coordinate(_ snapshot: NodeCoordinateSnapshot) -> String {
        let coordinate = snapshot.coordinate
        return [
            "node:       \(snapshot.node)",
            "vec:        [" + coordinate.vec.map { String(format: "%.9g", $0) }.joined(separator: ", ") + "]",
            "error:      " + String(format: "%.6g", coordinate.error),
            "adjustment: " + String(format: "%.6g s", coordinate.adjustment),
            "height:     " + String(format: "%.6g s", coordinate.height),
        ].joined(separator: "\n")
    }

    /// A member's clock relative to this node's: "+12 ms ±1", or "-" when not measured.
    static func clockOffset(_ member: MemberSnapshot) -> String {
        guard let offset = member.clockOffsetMs else { return "-" }
        return (offset >= 0 ? "+" : "") + "\(offset) ms ±\(member.clockOffsetErrorMs ?? 0)"
    }

    static func info(_ info: AgentInfo) -> String {
        let counts = ["alive", "suspect", "dead", "left"].map { "\($0)=\(info.members[$0] ?? 0)" }.joined(separator: " ")
        var lines = [
            "name:         \(info.name)",
            "address:      \(info.address)",
            "swarm:        \(info.swarm.isEmpty ? "(none)" : info.swarm)",
            "members:      \(counts)",
            "health score: \(info.healthScore)",
            "incarnation:  \(info.incarnation)",
            "left:         \(info.left)",
            "encryption:   \(info.encryption)",
            "clock:        \(info.clock.map { ($0.fenced ? "FENCED (local writes refused): " : "") + $0.text } ?? "unmeasured")",
            String(format: "uptime:       %.1f s", info.uptimeSeconds),
        ]
        if !info.counters.isEmpty {
            lines.append("counters:")
            for (name, value) in info.counters.sorted(by: { $0.key < $1.key }) {
                lines.append("  \(name) \(value)")
            }
        }
        return lines.joined(separator: "\n")
    }

    static func written(_ entry: EntrySnapshot) -> String {
        var text = "ok \(entry.key) @ \(entry.timestamp) by \(entry.origin)"
        if let replicas = entry.replicas { text += " on \(replicas.count) nodes: \(replicas.joined(separator: ", "))" }
        return text
    }

    static func value(_ entry: EntrySnapshot) -> String {
        entry.value ?? entry.valueBase64 ?? ""
    }

    static func entries(_ list: EntryList) -> String {
        TextTable.render(
            ["KEY", "VALUE", "TIMESTAMP", "ORIGIN"],
            list.entries.map { [$0.key, $0.value ?? "base64:" + ($0.valueBase64 ?? ""), $0.timestamp, $0.origin] })
    }

    static func status(_ status: StateStatus) -> String {
        let synced = status.lastSyncedMillisecondsAgo.map { String(format: "%.1f s ago", Double($0) / 1000) } ?? "never"
        let digest = status.digest.sorted { $0.key < $1.key }.map { "  \($0.key) \($0.value)" }.joined(separator: "\n")
        let peers = TextTable.render(["PEER", "SYNC"], status.peers.sorted { $0.key < $1.key }.map { [$0.key, $0.value.summary] })
        let catchUp = status.catchUp.map { catchUp in
            String(
                format: "catching up from %@: %.0f %%, %llu keys (%.1f MB) received, %llu keys (%.1f MB) to go, %.1f s\n",
                catchUp.peer, catchUp.progress * 100, catchUp.receivedEntries, Double(catchUp.receivedBytes) / 1e6,
                catchUp.remainingEntries, Double(catchUp.remainingBytes) / 1e6, catchUp.elapsedSeconds)
        } ?? ""
        return catchUp + """
            values:      \(status.values)
            tombstones:  \(status.tombstones)
            durable:     \(status.durable)
            seq:         \(status.seq)
            last sync:   \(synced)
            digest:
            \(digest)
            peers (state fingerprints at the last exchange):
            \(status.peers.isEmpty ? "  none" : peers)
            """
    }

    static func keyring(_ report: KeyringReport) -> String {
        let rows = report.keys.sorted { $0.key < $1.key }.map { key, holders in
            [key, "\(holders)/\(report.nodes)", "\(report.primaryKeys[key] ?? 0)"]
        }
        return TextTable.render(["KEY", "INSTALLED", "PRIMARY"], rows)
    }
}
