import RumorCore

/// A Vivaldi network coordinate as the API reports it: Serf's four fields, in seconds.
public struct CoordinateSnapshot: Codable, Sendable, Hashable {
    /// The position in Euclidean space (seconds; 8 dimensions, as Serf's).
    public var vec: [Double]
    /// The node's confidence: a relative error, 1.5 before any measurement.
    public var error: Double
    /// Added to every estimate from this node (seconds).
    public var adjustment: Double
    /// The node's own link (seconds).
    public var height: Double

    public init(_ coordinate: NetworkCoordinate) {
        vec = coordinate.vector
        error = coordinate.error
        adjustment = coordinate.adjustment
        height = coordinate.height
    }

    /// The coordinate back as the core's value (for estimates).
    public var coordinate: NetworkCoordinate {
        NetworkCoordinate(vector: vec, error: error, adjustment: adjustment, height: height)
    }
}

/// `GET /v1/coordinate`: one node's coordinate, as this agent knows it.
public struct NodeCoordinateSnapshot: Codable, Sendable, Hashable {
    public var node: String
    public var coordinate: CoordinateSnapshot

    public init(node: String, coordinate: CoordinateSnapshot) {
        self.node = node
        self.coordinate = coordinate
    }
}

/// `GET /v1/rtt`: the round trip between two nodes, estimated from their coordinates (as
/// `serf rtt`), not measured.
public struct RoundTripEstimate: Codable, Sendable, Hashable {
    public var from: String
    public var to: String
    /// The estimate in milliseconds.
    public var rttMs: Double
    /// Where the estimate comes from: `lan_coordinates` (Serf's LAN pool coordinates).
    public var source: String

    public init(from: String, to: String, rtt: Duration) {
        self.from = from
        self.to = to
        self.rttMs = Self.milliseconds(rtt)
        self.source = "lan_coordinates"
    }

    /// A duration in (fractional) milliseconds.
    public static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.nanosecondsClamped) / 1.0e6
    }

    /// As `serf rtt` prints it: `Estimated a <-> b rtt: 0.312 ms (using LAN coordinates)`.
    public var text: String {
        "Estimated \(from) <-> \(to) rtt: \(Self.fixed3(rttMs)) ms (using LAN coordinates)"
    }

    /// Three decimals without Foundation's formatter (`%.3f`).
    static func fixed3(_ value: Double) -> String {
        let thousandths = (value * 1000).rounded()
        let sign = thousandths < 0 ? "-" : ""
        let magnitude = Int64(abs(thousandths))
        let fraction = String(magnitude % 1000)
        return "\(sign)\(magnitude / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}

/// The order `GET /v1/members?sort=` lists members in.
public enum MemberOrder: String, Sendable, CaseIterable {
    /// By name (the default).
    case name
    /// Nearest first by estimated round trip from this node (itself first, members without a
    /// coordinate last, by name).
    case rtt

    /// The order named by `text` (nil: by name).
    /// - Throws: `AgentError` `bad_request` for another name.
    public init(parsing text: String?) throws(AgentError) {
        guard let text else { self = .name; return }
        guard let order = MemberOrder(rawValue: text) else {
            throw AgentError(
                code: .badRequest, message: "unknown sort order '\(text)'",
                hint: "use one of: \(Self.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = order
    }

    public func sorted(_ members: [MemberSnapshot]) -> [MemberSnapshot] {
        switch self {
        case .name: return members.sorted { $0.name < $1.name }
        case .rtt:
            return members.sorted { a, b in
                let left = a.rttMs ?? .infinity
                let right = b.rttMs ?? .infinity
                return left != right ? left < right : a.name < b.name
            }
        }
    }
}
