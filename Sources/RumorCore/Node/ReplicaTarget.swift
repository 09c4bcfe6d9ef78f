/// How many nodes must hold a write before `put` returns (`--wait`).
public enum ReplicaTarget: Sendable, Hashable, CustomStringConvertible {
    /// Every live node that replicates the state, at the time of each check.
    case all
    /// This many nodes, the writer included.
    case count(Int)

    /// Parses `all` or a positive count.
    public init?(_ text: String) {
        if text == "all" {
            self = .all
        } else if let count = Int(text), count > 0 {
            self = .count(count)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .all: "all"
        case .count(let count): "\(count)"
        }
    }
}
