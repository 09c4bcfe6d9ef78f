// libFuzzer target: what rides inside memberlist user messages — key-value replication frames
// (pushes, pulls, answers, acknowledgements), keyring frames, and Serf's messages, tags, filters
// and key payloads. Whatever decodes must re-encode to bytes that decode to the same value.
import RumorWire

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzReplication(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let frame = try? ReplicationCodec.decode(bytes) {
        let again = try? ReplicationCodec.decode(ReplicationCodec.encode(frame))
        precondition(again == frame, "replication frame does not survive re-encoding")
    }
    if let frame = try? KeyringCodec.decode(bytes) {
        precondition((try? KeyringCodec.decode(KeyringCodec.encode(frame))) == frame, "keyring frame does not survive re-encoding")
    }
    if let message = try? SerfCodec.decode(bytes) {
        precondition((try? SerfCodec.decode(SerfCodec.encode(message))) == message, "Serf message does not survive re-encoding")
    }
    if let tags = try? SerfCodec.decodeTags(bytes), bytes.first == SerfCodec.tagsMagic {
        precondition((try? SerfCodec.decodeTags(SerfCodec.encodeTags(tags))) == tags, "Serf tags do not survive re-encoding")
    }
    if let filter = try? SerfCodec.decodeFilter(bytes) {
        precondition((try? SerfCodec.decodeFilter(SerfCodec.encode(filter))) == filter, "Serf filter does not survive re-encoding")
    }
    if let key = try? SerfCodec.decodeKeyMessage(bytes) {
        precondition((try? SerfCodec.decodeKeyMessage(SerfCodec.encode(key))) == key, "Serf key message does not survive re-encoding")
    }
    return 0
}
