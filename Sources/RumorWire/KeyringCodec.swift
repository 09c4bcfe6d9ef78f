import RumorCore

/// Encodes and decodes keyring frames: `"KR" version(1) kind(1) body`. Request body
/// `operation(1: list, 2: install, 3: use, 4: remove) length(1) key`; response body
/// `errorLength(2, big-endian) error count(1) (length(1) key)*`.
public enum KeyringCodec {
    static let magic: [UInt8] = [0x4B, 0x52, 1]

    /// True when `payload` (a user message body) is a keyring frame.
    public static func isFrame(_ payload: [UInt8]) -> Bool {
        payload.count >= 4 && payload[0] == magic[0] && payload[1] == magic[1]
    }

    public static func encode(_ frame: KeyringFrame) -> [UInt8] {
        var out = magic
        switch frame {
        case .request(let operation):
            out.append(1)
            let (code, key): (UInt8, [UInt8]) =
                switch operation {
                case .list: (1, [])
                case .install(let key): (2, key)
                case .use(let key): (3, key)
                case .remove(let key): (4, key)
                }
            out.append(code)
            out.append(UInt8(clamping: key.count))
            out += key.prefix(255)
        case .response(let keys, let error):
            out.append(2)
            let text = Array((error ?? "").utf8.prefix(Int(UInt16.max)))
            out.append(UInt8(text.count >> 8))
            out.append(UInt8(text.count & 0xff))
            out += text
            let listed = keys.prefix(255)
            out.append(UInt8(listed.count))
            for key in listed {
                out.append(UInt8(clamping: key.count))
                out += key.prefix(255)
            }
        }
        return out
    }

    /// Decodes a frame; every length is checked against the bytes present.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> KeyringFrame {
        guard bytes.count >= 4, bytes[0] == magic[0], bytes[1] == magic[1] else {
            throw WireError(.malformed, "not a keyring frame")
        }
        guard bytes[2] == magic[2] else { throw WireError(.malformed, "keyring frame version \(bytes[2])") }
        var offset = 4
        func take(_ count: Int) throws(WireError) -> ArraySlice<UInt8> {
            guard count >= 0, bytes.count - offset >= count else { throw WireError(.truncated, "keyring frame cut off") }
            defer { offset += count }
            return bytes[offset..<(offset + count)]
        }
        let frame: KeyringFrame
        switch bytes[3] {
        case 1:
            let code = try take(1).first!
            let length = Int(try take(1).first!)
            let key = Array(try take(length))
            switch code {
            case 1: frame = .request(.list)
            case 2: frame = .request(.install(key))
            case 3: frame = .request(.use(key))
            case 4: frame = .request(.remove(key))
            default: throw WireError(.malformed, "unknown keyring operation \(code)")
            }
        case 2:
            let lengthBytes = try take(2)
            let errorLength = Int(lengthBytes.first!) << 8 | Int(lengthBytes.last!)
            let text = try take(errorLength)
            let count = Int(try take(1).first!)
            var keys: [[UInt8]] = []
            for _ in 0..<count {
                let length = Int(try take(1).first!)
                keys.append(Array(try take(length)))
            }
            frame = .response(keys: keys, error: text.isEmpty ? nil : String(decoding: text, as: UTF8.self))
        default:
            throw WireError(.malformed, "unknown keyring frame kind \(bytes[3])")
        }
        guard offset == bytes.count else { throw WireError(.malformed, "\(bytes.count - offset) bytes after a keyring frame") }
        return frame
    }
}
