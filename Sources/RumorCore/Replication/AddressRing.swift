/// The replicating members in address order as one node sees them: the layout of the broadcast
/// tree. Positions are clockwise offsets from the node: 0 is the first member after it, wrapping
/// past the highest address to the lowest, and `count` is the node itself (the whole ring).
///
/// Every node orders the same members the same way, so a range named by its end address means
/// the same members to sender and receiver; a member one of them does not know yet is simply
/// left to anti-entropy.
struct AddressRing {
    /// Every peer, sorted by address (the node itself may be among them).
    let peers: [NodeAddress]
    let local: NodeAddress?
    /// Index in `peers` of the first member after `local`.
    private let start: Int
    /// Members other than `local`.
    let count: Int

    init(_ peers: [NodeAddress], local: NodeAddress?) {
        self.peers = peers
        self.local = local
        guard let local else {
            start = 0
            count = peers.count
            return
        }
        let index = Self.lowerBound(local, in: peers)
        let containsLocal = index < peers.count && peers[index] == local
        start = containsLocal ? index + 1 : index
        count = peers.count - (containsLocal ? 1 : 0)
    }

    /// The member at clockwise `offset` (in `0..<count`).
    func member(at offset: Int) -> NodeAddress {
        let afterLocal = peers.count - start
        return offset < afterLocal ? peers[start + offset] : peers[offset - afterLocal]
    }

    /// How many members lie clockwise between this node and `address` (`address` itself
    /// excluded): its offset when it is a member, `count` for this node.
    func offset(of address: NodeAddress) -> Int {
        guard let local else { return Self.lowerBound(address, in: peers) }
        if address == local { return count }
        if local < address { return Self.lowerBound(address, in: peers) - start }
        return (peers.count - start) + Self.lowerBound(address, in: peers)
    }

    /// The tree below this node for the members up to `end` (exclusive; nil: all of them):
    /// `fanout` equal ranges, each as its first member and the end of its range.
    func children(until end: NodeAddress?, fanout: Int) -> [(child: NodeAddress, end: NodeAddress)] {
        let total = end.map(offset(of:)) ?? count
        guard total > 0 else { return [] }
        let lastEnd = end ?? local ?? member(at: 0)
        let parts = max(1, fanout)
        var out: [(child: NodeAddress, end: NodeAddress)] = []
        out.reserveCapacity(min(parts, total))
        for part in 0..<parts {
            let low = part * total / parts
            let high = (part + 1) * total / parts
            guard low < high else { continue }
            out.append((member(at: low), high < total ? member(at: high) : lastEnd))
        }
        return out
    }

    /// The member after `child` (which may have left the ring) and before `end`, if any: who
    /// relays a range whose first member stays silent.
    func member(after child: NodeAddress, before end: NodeAddress) -> NodeAddress? {
        var next = offset(of: child)
        if next < count, member(at: next) == child { next += 1 }
        guard next < min(count, offset(of: end)) else { return nil }
        return member(at: next)
    }

    /// The first index of `sorted` whose address is not below `address`.
    private static func lowerBound(_ address: NodeAddress, in sorted: [NodeAddress]) -> Int {
        var low = 0
        var high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle] < address { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
