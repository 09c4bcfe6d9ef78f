// libFuzzer target: key-value replication frames (pushes, pulls, answers, acknowledgements)
// and keyring frames. A frame that decodes must re-encode to bytes that decode to the same frame.
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
    return 0
}
