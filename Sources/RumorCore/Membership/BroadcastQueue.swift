/// Gossip waiting to be piggybacked, each item sent a bounded number of times.
///
/// Items sent the fewest times go first (newest first among equals), so fresh news spreads
/// before old news is repeated. A newer message about a member replaces any queued message about
/// the same member. memberlist calls this a `TransmitLimitedQueue`.
struct BroadcastQueue: Sendable {
    struct Item: Sendable {
        /// The member the message is about; a newer item with the same subject replaces this one.
        var subject: String?
        var message: Message
        var size: Int
        var transmits: Int
        var id: UInt64
    }

    private var items: [Item] = []
    private var nextID: UInt64 = 0

    var count: Int { items.count }
    var isEmpty: Bool { items.isEmpty }
    /// True when some queued message has not been sent yet.
    var hasFresh: Bool { items.contains { $0.transmits == 0 } }

    /// Queues `message`, replacing a queued message about the same subject.
    mutating func enqueue(_ message: Message, about subject: String?) {
        if let subject, let index = items.firstIndex(where: { $0.subject == subject }) {
            items.remove(at: index)
        }
        nextID &+= 1
        items.append(Item(subject: subject, message: message, size: message.estimatedWireSize, transmits: 0, id: nextID))
    }

    /// Takes messages fitting in `budget` bytes (each costing `overhead` extra bytes), counting one
    /// transmission for each; messages reaching `limit` transmissions leave the queue and are
    /// returned in `retired`.
    mutating func take(budget: Int, overhead: Int, limit: Int, maximumCount: Int) -> (sent: [Message], retired: [Message]) {
        guard !items.isEmpty, budget > overhead, maximumCount > 0 else { return ([], []) }
        items.sort { ($0.transmits, $1.id) < ($1.transmits, $0.id) }
        var remaining = budget
        var sent: [Message] = []
        var retired: [Message] = []
        var kept: [Item] = []
        kept.reserveCapacity(items.count)
        for var item in items {
            if sent.count < maximumCount, item.size + overhead <= remaining {
                remaining -= item.size + overhead
                sent.append(item.message)
                item.transmits += 1
                if item.transmits >= limit {
                    retired.append(item.message)
                    continue
                }
            }
            kept.append(item)
        }
        items = kept
        return (sent, retired)
    }
}
