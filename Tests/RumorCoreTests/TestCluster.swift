import RumorCore

/// A scripted cluster of `Membership` machines on a virtual clock and an in-memory network:
/// packets arrive after `latency`, may be dropped (seeded loss) or cut by a partition; push-pull
/// and stream pings complete at once between reachable nodes.
struct TestCluster {
    var now = Instant.zero
    var nodes: [String: Membership] = [:]
    var crashed: Set<String> = []
    var cut: Set<[String]> = []
    var loss = 0.0
    var latency = Duration.milliseconds(1)
    var events: [(Instant, String, MemberEvent)] = []
    private var random = SeededRandom(seed: 99)
    private var queue: [Scheduled] = []
    private var order: UInt64 = 0
    private var names: [NodeAddress: String] = [:]

    private struct Scheduled {
        var time: Instant
        var order: UInt64
        var node: String
        var action: Action
    }

    private enum Action {
        case timer(MembershipTimer)
        case message(Message, from: NodeAddress)
    }

    static func address(_ index: Int) -> NodeAddress {
        NodeAddress(ip: [10, 0, UInt8(index / 256), UInt8(index % 256)], port: 7946)
    }

    /// Adds and starts a node; joins through `seed` when given.
    mutating func add(_ name: String, index: Int, settings: MembershipSettings = .lan, join seed: String? = nil) {
        let address = Self.address(index)
        names[address] = name
        var machine = Membership(name: name, address: address, settings: settings, seed: UInt64(index) &* 7919, now: now)
        let start = machine.start(now: now)
        nodes[name] = machine
        apply(start, at: name)
        if let seed, let seedAddress = nodes[seed]?.localMember.address {
            let directives = nodes[name]!.join(seeds: [seedAddress], now: now)
            apply(directives, at: name)
        }
    }

    func isReachable(_ from: String, _ to: String) -> Bool {
        !crashed.contains(from) && !crashed.contains(to) && !cut.contains([from, to]) && !cut.contains([to, from])
    }

    mutating func partition(_ a: [String], _ b: [String]) {
        for x in a { for y in b { cut.insert([x, y]) } }
    }

    mutating func heal() { cut.removeAll() }

    /// The state `observer` holds for `member`.
    func state(of member: String, seenBy observer: String) -> MemberState? {
        nodes[observer]?.members[member]?.state
    }

    /// Runs until `limit` (absolute virtual time).
    mutating func run(until limit: Instant) {
        while let next = queue.indices.min(by: { (queue[$0].time, queue[$0].order) < (queue[$1].time, queue[$1].order) }),
            queue[next].time <= limit
        {
            let item = queue.remove(at: next)
            now = item.time
            guard !crashed.contains(item.node), var machine = nodes[item.node] else { continue }
            let directives: [MembershipDirective]
            switch item.action {
            case .timer(let timer): directives = machine.timerFired(timer, now: now)
            case .message(let message, let from): directives = machine.receive(message, from: from, now: now)
            }
            nodes[item.node] = machine
            apply(directives, at: item.node)
        }
        now = limit
    }

    mutating func run(for duration: Duration) {
        run(until: now + duration)
    }

    /// Runs in small steps until `condition` holds; returns the time it took, or nil at `limit`.
    mutating func runUntil(within limit: Duration, _ condition: (TestCluster) -> Bool) -> Duration? {
        let start = now
        while now - start < limit {
            if condition(self) { return now - start }
            run(for: .milliseconds(10))
        }
        return condition(self) ? now - start : nil
    }

    private mutating func schedule(_ action: Action, for node: String, after delay: Duration) {
        order += 1
        queue.append(Scheduled(time: now + delay, order: order, node: node, action: action))
    }

    mutating func apply(_ directives: [MembershipDirective], at node: String) {
        for directive in directives {
            switch directive {
            case .send(let to, let messages, _):
                guard let target = names[to], isReachable(node, target) else { continue }
                if loss > 0, Double.random(in: 0..<1, using: &random) < loss { continue }
                let from = nodes[node]!.localMember.address
                for message in messages { schedule(.message(message, from: from), for: target, after: latency) }
            case .startTimer(let timer, let delay):
                schedule(.timer(timer), for: node, after: delay)
            case .pushPull(let to, let state):
                guard let target = names[to], isReachable(node, target), var remote = nodes[target] else { continue }
                let from = nodes[node]!.localMember.address
                let (reply, remoteDirectives) = remote.receivePushPull(state, from: from, now: now)
                nodes[target] = remote
                apply(remoteDirectives, at: target)
                let local = nodes[node]!.receivePushPullReply(reply, from: to, now: now)
                apply(local, at: node)
            case .streamPing(let to, let ping, _):
                let contacted = names[to].map { isReachable(node, $0) } ?? false
                nodes[node]!.streamPingFinished(sequence: ping.sequenceNumber, contacted: contacted, now: now)
            case .event(let event):
                events.append((now, node, event))
            case .deliver, .conflict, .leaveCompleted:
                break
            }
        }
    }
}
