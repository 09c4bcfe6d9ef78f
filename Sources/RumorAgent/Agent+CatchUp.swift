import Logging
import NIOCore
import RumorCore
import RumorWire

/// Catch-up over real sockets: serving pages back to back on the requester's stream, and
/// receiving them one at a time (see `Replication+CatchUp.swift` for the protocol).
extension Agent {
    /// Whether a stream request asks for a catch-up (a replication frame of that kind).
    nonisolated static func isCatchUpRequest(_ message: StreamMessage) -> Bool {
        guard case .user(let payload) = message, ReplicationCodec.isFrame(payload) else { return false }
        return payload[3] == ReplicationCodec.catchUpRequestKind
    }

    /// Serves a catch-up: writes each page once the previous one is on the socket, until the
    /// last (or the requester goes away).
    nonisolated func serveCatchUp(_ message: StreamMessage, from peer: NodeAddress?, writer: StreamReplyWriter) async {
        guard case .user(let payload) = message, let sender = peer,
            case .catchUpRequest(let from, let digest, let held)? = try? ReplicationCodec.decode(payload),
            var serving = await beginServingCatchUp(from: from, digest: digest, held: held, sender: sender)
        else { return }
        let started = ContinuousClock.now
        do {
            while !serving.isFinished {
                guard let (bytes, next) = await catchUpPage(serving) else { return }
                serving = next
                try await writer.write(bytes)
            }
            logger.info(
                "served a catch-up",
                metadata: [
                    "peer": "\(from)", "entries": "\(serving.sentEntries)", "bytes": "\(serving.sentBytes)",
                    "seconds": "\((ContinuousClock.now - started).seconds)",
                ])
        } catch {
            logger.info(
                "a catch-up ended before its last page: the peer resumes later from where it got",
                metadata: ["peer": "\(from)", "entries": "\(serving.sentEntries)", "error": "\(error)"])
        }
    }

    private func beginServingCatchUp(
        from peer: String, digest: Digest, held: HeldWrites, sender: NodeAddress
    ) -> Replication.CatchUpServing? {
        guard !stopped else { return nil }
        counters.add("streams_received")
        let (serving, effects) = node.catchUpRequested(from: peer, digest: digest, held: held, sender: sender, at: time)
        execute(effects)
        return serving
    }

    /// The next page, encoded for the stream, and the serving state after it.
    private func catchUpPage(_ serving: Replication.CatchUpServing) -> ([UInt8], Replication.CatchUpServing)? {
        guard !stopped else { return nil }
        var serving = serving
        let frame = withValues(node.nextCatchUpPage(&serving))
        let bytes = codec.streams.encode(.user(ReplicationCodec.encode(frame)), compress: false)
        counters.add("bytes_sent", UInt64(bytes.count))
        return (bytes, serving)
    }

    /// Receives a catch-up from `address`: one stream, page after page, each merged (and saved)
    /// before the next is read. Logs its start, its progress every 5 s and its end.
    func receiveCatchUp(_ request: ReplicationFrame, from address: NodeAddress) async {
        guard let transport else {
            _ = node.catchUpEnded(completed: false)
            return
        }
        let started = ContinuousClock.now
        if let progress = node.replication.catchUp {
            logger.info(
                "catching up",
                metadata: [
                    "peer": "\(address)", "entries_behind": "\(progress.remainingEntries + progress.receivedEntries)",
                    "bytes_behind": "\(progress.remainingBytes + progress.receivedBytes)",
                ])
        }
        let codec = self.codec.streams
        var lastReport = started
        var completed = false
        do {
            try await transport.receivePages(
                codec.encode(.user(ReplicationCodec.encode(request)), compress: false), from: address,
                idleTimeout: .nanoseconds(configuration.membership.streamTimeout.nanosecondsClamped),
                maximumBytes: GossipCodec.maximumStreamBytes, decode: { try codec.decode($0) }, isolation: self
            ) { message in
                guard case .user(let payload) = message, case .catchUpPage(let page) = try ReplicationCodec.decode(payload) else {
                    throw WireError(.malformed, "a catch-up stream carried something other than a page")
                }
                self.catchUpPageArrived(page, from: address, bytes: payload.count)
                if ContinuousClock.now - lastReport >= .seconds(5) {
                    lastReport = ContinuousClock.now
                    self.logCatchUpProgress(since: started)
                }
                completed = page.isLast
                return page.isLast
            }
        } catch {
            if let wireError = error as? WireError { dropped(wireError, from: address) }
        }
        let progress = node.catchUpEnded(completed: completed)
        let metadata: Logger.Metadata = [
            "peer": "\(address)", "entries": "\(progress?.receivedEntries ?? 0)", "bytes": "\(progress?.receivedBytes ?? 0)",
            "pages": "\(progress?.pages ?? 0)", "seconds": "\((ContinuousClock.now - started).seconds)",
        ]
        if completed {
            logger.info("caught up", metadata: metadata)
        } else {
            logger.warning("catch-up interrupted: the next anti-entropy round resumes it from here", metadata: metadata)
        }
    }

    private func catchUpPageArrived(_ page: CatchUpPage, from address: NodeAddress, bytes: Int) {
        counters.add("bytes_received", UInt64(bytes))
        execute(node.catchUpPageArrived(page, from: address, at: time))
        // Each page is saved before the next is read: the digest it advanced must not run ahead
        // of the entries on disk.
        execute(node.flushSaves())
    }

    private func logCatchUpProgress(since started: ContinuousClock.Instant) {
        guard let progress = node.replication.catchUp else { return }
        let total = progress.receivedEntries + progress.remainingEntries
        let seconds = (ContinuousClock.now - started).seconds
        logger.info(
            "catching up",
            metadata: [
                "peer": "\(progress.peer)", "entries": "\(progress.receivedEntries) of \(total)",
                "bytes": "\(progress.receivedBytes)", "remaining_bytes": "\(progress.remainingBytes)",
                "entries_per_second": "\(seconds > 0 ? Int(Double(progress.receivedEntries) / seconds) : 0)",
            ])
    }
}
