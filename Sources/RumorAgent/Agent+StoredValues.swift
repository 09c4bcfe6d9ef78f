import RumorCore

/// A durable node keeps values on disk only (`Node.saved`); they are loaded back here, in
/// batches, whenever entries leave the node: in replication frames and in API answers.
extension Agent {
    /// `entries` with every value loaded. An entry whose value cannot be found at its version
    /// (which would be a bug) is left out, logged and counted, never sent as a tombstone.
    func withValues(_ entries: [Entry]) -> [Entry] {
        guard entries.contains(where: \.isValueOnDisk) else { return entries }
        let onDisk = entries.filter(\.isValueOnDisk)
        var values: [String: [UInt8]] = [:]
        do {
            values = try storage?.values(of: onDisk) ?? [:]
        } catch {
            counters.add("storage_errors")
            storageHealth.failed(error, saving: "(reading values)", directory: storage?.directory ?? "-", logger: logger)
        }
        return entries.compactMap { entry in
            guard entry.isValueOnDisk else { return entry }
            guard let value = values[entry.key] else {
                counters.add("stored_values_missing")
                logger.error("a value kept on disk is missing; leaving the entry out", metadata: ["key": "\(entry.key)", "version": "\(entry.version)"])
                return nil
            }
            var loaded = entry
            loaded.value = value
            loaded.storedValueBytes = nil
            return loaded
        }
    }

    /// `datagram` with the values of its entries loaded.
    func withValues(_ datagram: Datagram) -> Datagram {
        guard case .replication(let frame) = datagram else { return datagram }
        return .replication(withValues(frame))
    }

    func withValues(_ frame: ReplicationFrame) -> ReplicationFrame {
        switch frame {
        case .push(let entries, let relay, let acknowledge, let after):
            return .push(entries: withValues(entries), relay: relay, acknowledge: acknowledge, after: after)
        case .pullAnswer(let from, let wall, let entries, let digest, let held, let fingerprint):
            return .pullAnswer(
                from: from, wallMilliseconds: wall, entries: withValues(entries), digest: digest, held: held, fingerprint: fingerprint)
        case .catchUpPage(var page):
            page.entries = withValues(page.entries)
            return .catchUpPage(page)
        case .pullRequest, .acknowledgement, .refusal, .catchUpRequest, .event, .queryResponse:
            return frame
        }
    }
}
