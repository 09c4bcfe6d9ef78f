// libFuzzer target: TCP stream message decoding (push-pull, user messages, ping/ack/error,
// compression, label, encryption with its length header), whole and cut short; and the
// pilot-daemon IPC frames and pushes a Pilot transport reads from its unix socket.
import RumorWire

let key = [UInt8](repeating: 0x5a, count: 16)
let plain = StreamCodec(maximumMessageSize: 1 << 20)
let encrypted = StreamCodec(label: "swarm", keyring: try! Keyring(keys: [key]), maximumMessageSize: 1 << 20)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStream(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let input = Array(bytes.dropFirst())
    if bytes[0] % 2 == 0 {
        if let decoded = try? plain.decode(input) {
            precondition(decoded.consumed <= input.count, "consumed more bytes than given")
        }
        _ = try? plain.decode(Array(input.prefix(input.count / 2)))
        if let decoded = try? PilotIPC.decodeFrame(input[...]) {
            precondition(decoded.consumed <= input.count, "consumed more bytes than given")
            _ = try? PilotIPC.event(decoded.frame)
            _ = PilotIPC.errorMessage(decoded.frame)
            let again = try? PilotIPC.decodeFrame(decoded.frame.bytes[...])
            precondition(again?.frame == decoded.frame, "pilot frame does not survive re-encoding")
        }
    } else {
        let length = UInt32(GossipCipher.overhead + input.count)
        let header: [UInt8] = [
            10, UInt8(length >> 24), UInt8((length >> 16) & 0xff), UInt8((length >> 8) & 0xff), UInt8(length & 0xff),
        ]
        let body = GossipCipher.seal(input, key: key, authenticated: header + Array("swarm".utf8))
        _ = try? encrypted.decode([244, 5] + Array("swarm".utf8) + header + body)
        _ = try? encrypted.decode([244, 5] + Array("swarm".utf8) + input)
    }
    return 0
}
