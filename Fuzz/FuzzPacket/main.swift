// libFuzzer target: UDP packet decoding (memberlist framing, compound, LZW, CRC, label,
// encryption, and the multicast DNS of --discover). Built and run by Fuzz/run.sh; without the fuzzer flags this is an empty program.
import RumorWire

let key = [UInt8](repeating: 0x5a, count: 32)
let plain = PacketCodec()
let labelled = PacketCodec(label: "swarm")
let encrypted = PacketCodec(label: "swarm", keyring: try! Keyring(keys: [key]))
/// A node moving to encryption: what no key opens is read as plaintext.
let acceptingPlaintext = {
    var codec = encrypted
    codec.verifyIncoming = false
    return codec
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPacket(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let input = Array(bytes.dropFirst())
    switch bytes[0] % 4 {
    case 0:
        _ = try? plain.decode(input)
    case 1:
        _ = try? labelled.decode([244, 5] + Array("swarm".utf8) + input)
    case 3:
        if let message = try? MDNS.decode(input) {
            let service = MDNS.service(swarm: "alpha")
            _ = message.asks(for: service)
            for instance in message.instances(of: service) {
                precondition(instance.ip.count == 4 || instance.ip.count == 16, "an address of another length")
            }
        }
    default:
        // Seal the input as a plaintext packet, so the fuzzer reaches the decoder behind the
        // decryption (it cannot forge tags), and also try it raw as ciphertext.
        _ = try? encrypted.decode([244, 5] + Array("swarm".utf8) + GossipCipher.seal(input, key: key, authenticated: Array("swarm".utf8)))
        _ = try? encrypted.decode([244, 5] + Array("swarm".utf8) + input)
        _ = try? acceptingPlaintext.decode([244, 5] + Array("swarm".utf8) + input)
    }
    return 0
}
