/// What a watch has handed over, per key: the version (hybrid timestamp, then writer) and the
/// change (`put`, `delete`, `expire`, `depart`) of the last line it printed for each key.
///
/// Seqs order changes only within one change log. When the agent comes back with a new one
/// (restarted without `--data-dir`, or after a crash), the watch replays every key from seq 0,
/// and this decides which lines are news, so each change reaches the reader once:
/// - a key never printed is news;
/// - a key at a newer version than the one printed is news;
/// - the same version is news only with another change (a value that expired or whose writer
///   departed since it was printed as a put); the same version and change is a repeat;
/// - an older version is not news (a replica still catching up holds an older write than the
///   one printed; the newer one arrives again as a change).
///
/// It is kept for the life of the watch, one record per key seen under its prefix.
public struct DeliveredChanges: Sendable {
    /// A write's version as a watch line shows it: `timestamp` (`milliseconds.logical`), then
    /// `origin`, ordered as the agent orders versions (last writer wins).
    public struct Version: Hashable, Comparable, Sendable {
        public var milliseconds: UInt64
        public var logical: UInt64
        public var origin: String

        public init(milliseconds: UInt64, logical: UInt64, origin: String) {
            self.milliseconds = milliseconds
            self.logical = logical
            self.origin = origin
        }

        /// Parses `milliseconds.logical`; nil when it is not that.
        public init?(timestamp: String, origin: String) {
            let parts = timestamp.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2, let milliseconds = UInt64(parts[0]), let logical = UInt64(parts[1]) else { return nil }
            self.init(milliseconds: milliseconds, logical: logical, origin: origin)
        }

        public static func < (lhs: Self, rhs: Self) -> Bool {
            (lhs.milliseconds, lhs.logical, lhs.origin) < (rhs.milliseconds, rhs.logical, rhs.origin)
        }
    }

    private var latest: [String: (version: Version, change: String)] = [:]

    public init() {}

    /// Keys recorded.
    public var count: Int { latest.count }

    /// Whether a change of `key` to `version` is news to the reader; records it when it is.
    public mutating func admit(key: String, version: Version, change: String) -> Bool {
        if let seen = latest[key] {
            if version < seen.version { return false }
            if version == seen.version, change == seen.change { return false }
        }
        latest[key] = (version, change)
        return true
    }

    /// `admit` for a watch line; a line without a key, version or change is always news.
    public mutating func admit(_ line: WatchLine) -> Bool {
        guard let key = line.key, let timestamp = line.timestamp, let origin = line.origin, let change = line.change,
            let version = Version(timestamp: timestamp, origin: origin)
        else { return true }
        return admit(key: key, version: version, change: change)
    }
}

/// The top-level fields of one watch line that the watch needs, read in one pass over its bytes
/// without decoding the value. Strings are kept as the JSON spells them (escapes included): they
/// are compared only with other lines from the agents' one encoder.
public struct WatchLine: Sendable, Equatable {
    public var key: String?
    public var timestamp: String?
    public var origin: String?
    public var change: String?
    public var epoch: String?
    public var seq: UInt64?

    public init(_ text: String) {
        self.init(Array(text.utf8)[...])
    }

    public init(_ line: ArraySlice<UInt8>) {
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        var depth = 0
        var name: ArraySlice<UInt8>?
        var index = line.startIndex
        while index < line.endIndex {
            let byte = line[index]
            switch byte {
            case quote:
                var end = index + 1
                while end < line.endIndex, line[end] != quote { end += line[end] == backslash ? 2 : 1 }
                let token = line[(index + 1)..<min(end, line.endIndex)]
                index = end + 1
                guard depth == 1 else { continue }
                var next = index
                while next < line.endIndex, line[next] == UInt8(ascii: " ") { next += 1 }
                if next < line.endIndex, line[next] == UInt8(ascii: ":") {
                    name = token
                    index = next + 1
                } else if let field = name {
                    set(field, String(decoding: token, as: UTF8.self))
                    name = nil
                }
                continue
            case UInt8(ascii: "0")...UInt8(ascii: "9") where depth == 1 && name != nil:
                var end = index
                var value: UInt64 = 0
                while end < line.endIndex, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(line[end]) {
                    value = value &* 10 &+ UInt64(line[end] - UInt8(ascii: "0"))
                    end += 1
                }
                if name?.elementsEqual("seq".utf8) == true { seq = value }
                name = nil
                index = end
                continue
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                if depth > 1 { name = nil }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
            case UInt8(ascii: ","):
                name = nil
            default:
                break
            }
            index += 1
        }
    }

    private mutating func set(_ name: ArraySlice<UInt8>, _ value: String) {
        switch String(decoding: name, as: UTF8.self) {
        case "key": key = value
        case "timestamp": timestamp = value
        case "origin": origin = value
        case "change": change = value
        case "epoch": epoch = value
        default: break
        }
    }
}
