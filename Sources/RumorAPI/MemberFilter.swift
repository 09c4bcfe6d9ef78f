import RumorCore

/// Which members `GET /v1/members` lists, as `serf members` filters them: `tag=KEY=REGEX`
/// (repeatable; every one must match), `status=alive|suspect|dead|left`, `name=REGEX`. Regular
/// expressions match the whole value (they are anchored, as in `serf members`).
public struct MemberFilter {
    private let tags: [(key: String, pattern: Regex<AnyRegexOutput>)]
    private let status: String?
    private let name: Regex<AnyRegexOutput>?

    /// - Throws: `AgentError` `bad_request` naming the parameter that is not valid.
    public init(tags: [String], status: String?, name: String?) throws(AgentError) {
        var parsed: [(String, Regex<AnyRegexOutput>)] = []
        for tag in tags {
            guard let equals = tag.firstIndex(of: "="), equals != tag.startIndex else {
                throw AgentError(code: .badRequest, message: "tag filter '\(tag)' is not KEY=REGEX", hint: "e.g. tag=role=web.*")
            }
            parsed.append((String(tag[..<equals]), try Self.anchored(String(tag[tag.index(after: equals)...]), "tag filter '\(tag)'")))
        }
        if let status, !["alive", "suspect", "dead", "left"].contains(status) {
            throw AgentError(code: .badRequest, message: "unknown status '\(status)'", hint: "use alive, suspect, dead or left")
        }
        self.tags = parsed
        self.status = status
        self.name = try name.map { (pattern) throws(AgentError) in try Self.anchored(pattern, "name filter '\(pattern)'") }
    }

    private static func anchored(_ pattern: String, _ what: String) throws(AgentError) -> Regex<AnyRegexOutput> {
        do {
            return try Regex("^(?:" + pattern + ")$")
        } catch {
            throw AgentError(code: .badRequest, message: "\(what) is not a regular expression: \(error)", hint: "e.g. web-[0-9]+")
        }
    }

    public func matches(_ member: MemberSnapshot) -> Bool {
        if let status, member.state != status { return false }
        if let name, (try? name.wholeMatch(in: member.name)) == nil { return false }
        for (key, pattern) in tags where (try? pattern.wholeMatch(in: member.tags[key] ?? "")) == nil {
            return false
        }
        return true
    }
}
