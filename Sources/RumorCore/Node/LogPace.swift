/// Paces a log line about something that can repeat at flood rates (a refused address from a
/// spoofing peer): the first occurrence is logged at once, then at most one line per
/// `interval`, each saying how many occurrences it stands for. The counter beside it counts
/// every one; the log stays readable and never silent.
struct LogPace: Sendable, Hashable {
    let interval: Duration
    private var lastLogged: Instant?
    private var unlogged = 0

    init(interval: Duration) {
        self.interval = interval
    }

    /// Notes one occurrence at `now`; returns how many occurrences a line logged now stands
    /// for (this one included), or nil when the line waits.
    mutating func note(now: Instant) -> Int? {
        unlogged += 1
        if let lastLogged, now - lastLogged < interval { return nil }
        lastLogged = now
        defer { unlogged = 0 }
        return unlogged
    }
}
