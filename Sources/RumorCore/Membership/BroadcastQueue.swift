import HeapModule

/// Gossip waiting to be piggybacked, each item sent a bounded number of times.
///
/// Items sent the fewest times go first (newest first among equals), so fresh news spreads
/// before old news is repeated. A newer message about a member replaces any queued message about
/// the same member. memberlist calls this a `TransmitLimitedQueue`.
///
/// Taking costs O((sent + skipped) · log n), not O(n): the send order is a heap of ranks, and an
/// item replaced or retired leaves a stale rank behind that is dropped when it surfaces (the heap is
/// rebuilt when stale ranks outnumber live items). A join storm queues news of every member on
/// every node, so a linear scan per packet made the queue cost grow with N² per node.
struct BroadcastQueue: Sendable {
    struct Item: Sendable {
        /// The member the message is about; a newer item with the same subject replaces this one.
        var subject: String?
        var message: Message
        var size: Int
        var transmits: Int
    }

    /// Where an item stands in the send order: fewer transmits first, then newer first.
    private struct Rank: Comparable, Sendable {
        var transmits: Int
        var id: UInt64

        static func < (a: Rank, b: Rank) -> Bool { (a.transmits, b.id) < (b.transmits, a.id) }
    }

    /// How many items in a row that do not fit the remaining budget `take` passes over before it
    /// stops looking for a smaller one.
    static let skipLimit = 16

    private var items: [UInt64: Item] = [:]
    private var idBySubject: [String: UInt64] = [:]
    private var order = Heap<Rank>()
    private var freshCount = 0
    private var nextID: UInt64 = 0

    var count: Int { items.count }
    var isEmpty: Bool { items.isEmpty }
    /// True when some queued message has not been sent yet.
    var hasFresh: Bool { freshCount > 0 }

    /// Queues `message`, replacing a queued message about the same subject.
    mutating func enqueue(_ message: Message, about subject: String?) {
        nextID &+= 1
        if let subject, let replaced = idBySubject.updateValue(nextID, forKey: subject) {
            remove(id: replaced)
        }
        items[nextID] = Item(subject: subject, message: message, size: message.estimatedWireSize, transmits: 0)
        freshCount += 1
        order.insert(Rank(transmits: 0, id: nextID))
    }

    /// Takes messages fitting in `budget` bytes (each costing `overhead` extra bytes), counting one
    /// transmission for each; messages reaching `limit` transmissions leave the queue and are
    /// returned in `retired`. Stops after `skipLimit` items in a row that do not fit.
    mutating func take(budget: Int, overhead: Int, limit: Int, maximumCount: Int) -> (sent: [Message], retired: [Message]) {
        guard !items.isEmpty, budget > overhead, maximumCount > 0 else { return ([], []) }
        var remaining = budget
        var sent: [Message] = []
        var retired: [Message] = []
        var putBack: [Rank] = []
        var skippedInARow = 0
        while sent.count < maximumCount, remaining > overhead, skippedInARow < Self.skipLimit,
            let rank = order.popMin()
        {
            guard var item = items[rank.id], item.transmits == rank.transmits else { continue }
            guard item.size + overhead <= remaining else {
                putBack.append(rank)
                skippedInARow += 1
                continue
            }
            skippedInARow = 0
            remaining -= item.size + overhead
            sent.append(item.message)
            if item.transmits == 0 { freshCount -= 1 }
            item.transmits += 1
            if item.transmits >= limit {
                retired.append(item.message)
                items[rank.id] = nil
                if let subject = item.subject, idBySubject[subject] == rank.id { idBySubject[subject] = nil }
            } else {
                items[rank.id] = item
                putBack.append(Rank(transmits: item.transmits, id: rank.id))
            }
        }
        for rank in putBack { order.insert(rank) }
        if order.count > 2 * items.count + 64 {
            order = Heap(items.map { Rank(transmits: $0.value.transmits, id: $0.key) })
        }
        return (sent, retired)
    }

    private mutating func remove(id: UInt64) {
        guard let item = items.removeValue(forKey: id) else { return }
        if item.transmits == 0 { freshCount -= 1 }
    }
}
