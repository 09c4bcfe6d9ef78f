import RumorCore

/// A 4-ary min-heap of events by (time, insertion order): ties resolve in the order scheduled,
/// which keeps runs deterministic. The heap holds plain (time, order, slot) triples; the events
/// themselves wait in a slab, so sifting moves no reference-counted payloads. Four children a
/// node halve the levels a pop walks (each a cache miss in a heap of 100,000 nodes' events).
public struct EventQueue<Event> {
    struct Item {
        var time: Int64
        var order: UInt64
        var slot: Int32
    }

    private var heap: [Item] = []
    private var slab: [Event?] = []
    private var freeSlots: [Int32] = []
    private var order: UInt64 = 0

    public init() {}

    public var count: Int { heap.count }

    /// When the earliest event is due.
    public var nextTime: Instant? { heap.first.map { Instant(nanoseconds: $0.time) } }

    public mutating func push(time: Instant, event kind: Event) {
        order += 1
        let slot: Int32
        if let free = freeSlots.popLast() {
            slot = free
            slab[Int(free)] = kind
        } else {
            slot = Int32(slab.count)
            slab.append(kind)
        }
        heap.append(Item(time: time.nanoseconds, order: order, slot: slot))
        var child = heap.count - 1
        let item = heap[child]
        while child > 0 {
            let parent = (child - 1) / 4
            guard Self.before(item, heap[parent]) else { break }
            heap[child] = heap[parent]
            child = parent
        }
        heap[child] = item
    }

    public mutating func pop() -> (time: Instant, event: Event)? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            var parent = 0
            let count = heap.count
            while true {
                let first = 4 * parent + 1
                guard first < count else { break }
                var child = first
                for sibling in first + 1..<min(first + 4, count) where Self.before(heap[sibling], heap[child]) { child = sibling }
                guard Self.before(heap[child], last) else { break }
                heap[parent] = heap[child]
                parent = child
            }
            heap[parent] = last
        }
        let kind = slab[Int(top.slot)].take()!
        freeSlots.append(top.slot)
        return (Instant(nanoseconds: top.time), kind)
    }

    private static func before(_ a: Item, _ b: Item) -> Bool {
        a.time < b.time || (a.time == b.time && a.order < b.order)
    }
}
