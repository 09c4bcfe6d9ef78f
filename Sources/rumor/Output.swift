import Foundation
import RumorAgent

/// How the CLI prints results and errors.
enum Output {
    /// Prints `{"status":"error",…}` (JSON) or `error:`/`hint:` lines to stderr and exits 1.
    static func fail(_ error: AgentError, json: Bool) -> Never {
        FileHandle.standardError.write(Data(errorText(error, json: json).utf8))
        exit(1)
    }

    static func errorText(_ error: AgentError, json: Bool) -> String {
        if json {
            let envelope = ["status": "error", "code": error.code.rawValue, "message": error.message, "hint": error.hint]
            return String(decoding: try! encoder.encode(envelope), as: UTF8.self) + "\n"
        }
        return "error: \(error.message)\nhint: \(error.hint)\n"
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func print(_ text: String) {
        FileHandle.standardOutput.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }

    /// An aligned text table.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }

    static func membersTable(_ members: [MemberSnapshot]) -> String {
        table(
            ["NAME", "ADDRESS", "STATE", "INCARNATION", "META"],
            members.map { [$0.name, $0.address, $0.state, String($0.incarnation), $0.meta] })
    }

    static func infoText(_ info: AgentInfo) -> String {
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
}
