/// The subset of msgpack memberlist uses, written as HashiCorp's go-msgpack 0.5 writes it (strings
/// and byte slices as "raw": fixraw/raw16/raw32) and read liberally (str8 and bin8/16/32 from newer
/// encoders, any integer width). Every length is checked against the bytes left before use.
struct MessagePackWriter {
    private(set) var bytes: [UInt8]

    init(reservingCapacity capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    mutating func writeByte(_ value: UInt8) {
        bytes.append(value)
    }

    mutating func writeMapHeader(_ count: Int) {
        if count < 16 {
            bytes.append(0x80 | UInt8(count))
        } else if count < 65_536 {
            bytes.append(0xde)
            writeBigEndian(UInt16(count))
        } else {
            bytes.append(0xdf)
            writeBigEndian(UInt32(count))
        }
    }

    mutating func writeRaw(_ value: some Collection<UInt8>) {
        let count = value.count
        if count < 32 {
            bytes.append(0xa0 | UInt8(count))
        } else if count < 65_536 {
            bytes.append(0xda)
            writeBigEndian(UInt16(count))
        } else {
            bytes.append(0xdb)
            writeBigEndian(UInt32(count))
        }
        bytes.append(contentsOf: value)
    }

    /// Bytes, or nil when empty (as go-msgpack writes a nil slice).
    mutating func writeRawOrNil(_ value: [UInt8]) {
        if value.isEmpty { bytes.append(0xc0) } else { writeRaw(value) }
    }

    mutating func writeString(_ value: String) {
        writeRaw(value.utf8)
    }

    mutating func writeUnsigned(_ value: UInt64) {
        switch value {
        case 0...0x7f: bytes.append(UInt8(value))
        case 0...0xff: bytes.append(contentsOf: [0xcc, UInt8(value)])
        case 0...0xffff:
            bytes.append(0xcd)
            writeBigEndian(UInt16(value))
        case 0...0xffff_ffff:
            bytes.append(0xce)
            writeBigEndian(UInt32(value))
        default:
            bytes.append(0xcf)
            writeBigEndian(value)
        }
    }

    mutating func writeSigned(_ value: Int64) {
        if value >= 0 {
            writeUnsigned(UInt64(value))
        } else if value >= -32 {
            bytes.append(UInt8(bitPattern: Int8(value)))
        } else if value >= Int64(Int8.min) {
            bytes.append(contentsOf: [0xd0, UInt8(bitPattern: Int8(value))])
        } else if value >= Int64(Int16.min) {
            bytes.append(0xd1)
            writeBigEndian(UInt16(bitPattern: Int16(value)))
        } else if value >= Int64(Int32.min) {
            bytes.append(0xd2)
            writeBigEndian(UInt32(bitPattern: Int32(value)))
        } else {
            bytes.append(0xd3)
            writeBigEndian(UInt64(bitPattern: value))
        }
    }

    mutating func writeBool(_ value: Bool) {
        bytes.append(value ? 0xc3 : 0xc2)
    }

    /// A map key (a Go field name) followed by nothing: the caller writes the value next.
    mutating func writeKey(_ name: StaticString) {
        name.withUTF8Buffer { writeRaw($0) }
    }

    mutating func writeBigEndian<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }
}

/// Reads msgpack values from a byte slice, throwing `WireError` on anything short or malformed.
struct MessagePackReader {
    let bytes: [UInt8]
    private(set) var offset: Int
    let end: Int

    init(_ bytes: [UInt8], offset: Int = 0, end: Int? = nil) {
        self.bytes = bytes
        self.offset = offset
        self.end = end ?? bytes.count
    }

    var remaining: Int { end - offset }

    mutating func readByte() throws(WireError) -> UInt8 {
        guard offset < end else { throw WireError(.truncated, "expected a byte") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func take(_ count: Int) throws(WireError) -> ArraySlice<UInt8> {
        guard count >= 0 else { throw WireError(.malformed, "negative length") }
        guard count <= remaining else { throw WireError(.truncated, "length \(count) exceeds the \(remaining) bytes left") }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    mutating func readBigEndian<T: FixedWidthInteger & UnsignedInteger>(_: T.Type) throws(WireError) -> T {
        let slice = try take(MemoryLayout<T>.size)
        var value: T = 0
        for byte in slice { value = value << 8 | T(byte) }
        return value
    }

    mutating func readMapHeader() throws(WireError) -> Int {
        let lead = try readByte()
        switch lead {
        case 0x80...0x8f: return Int(lead & 0x0f)
        case 0xde: return Int(try readBigEndian(UInt16.self))
        case 0xdf: return Int(try readBigEndian(UInt32.self))
        default: throw WireError(.malformed, "expected a map, found 0x\(String(lead, radix: 16))")
        }
    }

    /// A string or byte string (raw, str8, bin); nil reads as empty.
    mutating func readBytes() throws(WireError) -> [UInt8] {
        let lead = try readByte()
        let count: Int
        switch lead {
        case 0xc0: return []
        case 0xa0...0xbf: count = Int(lead & 0x1f)
        case 0xd9, 0xc4: count = Int(try readByte())
        case 0xda, 0xc5: count = Int(try readBigEndian(UInt16.self))
        case 0xdb, 0xc6: count = Int(try readBigEndian(UInt32.self))
        case 0x90...0x9f, 0xdc, 0xdd:
            // An array of small integers (some encoders write []uint8 this way).
            offset -= 1
            let items = try readArrayHeader()
            guard items <= remaining else { throw WireError(.truncated, "array of \(items) items") }
            var result: [UInt8] = []
            result.reserveCapacity(items)
            for _ in 0..<items {
                guard let item = UInt8(exactly: try readInteger()) else { throw WireError(.malformed, "byte out of range") }
                result.append(item)
            }
            return result
        default: throw WireError(.malformed, "expected bytes, found 0x\(String(lead, radix: 16))")
        }
        return Array(try take(count))
    }

    mutating func readString() throws(WireError) -> String {
        let raw = try readBytes()
        guard let text = String(validating: raw, as: UTF8.self) else {
            throw WireError(.malformed, "string is not UTF-8")
        }
        return text
    }

    mutating func readArrayHeader() throws(WireError) -> Int {
        let lead = try readByte()
        switch lead {
        case 0x90...0x9f: return Int(lead & 0x0f)
        case 0xdc: return Int(try readBigEndian(UInt16.self))
        case 0xdd: return Int(try readBigEndian(UInt32.self))
        default: throw WireError(.malformed, "expected an array, found 0x\(String(lead, radix: 16))")
        }
    }

    /// Any integer encoding (nil reads as 0).
    mutating func readInteger() throws(WireError) -> Int64 {
        let lead = try readByte()
        switch lead {
        case 0x00...0x7f: return Int64(lead)
        case 0xe0...0xff: return Int64(Int8(bitPattern: lead))
        case 0xc0: return 0
        case 0xcc: return Int64(try readByte())
        case 0xcd: return Int64(try readBigEndian(UInt16.self))
        case 0xce: return Int64(try readBigEndian(UInt32.self))
        case 0xcf:
            let value = try readBigEndian(UInt64.self)
            guard let exact = Int64(exactly: value) else { throw WireError(.malformed, "integer too large") }
            return exact
        case 0xd0: return Int64(Int8(bitPattern: try readByte()))
        case 0xd1: return Int64(Int16(bitPattern: try readBigEndian(UInt16.self)))
        case 0xd2: return Int64(Int32(bitPattern: try readBigEndian(UInt32.self)))
        case 0xd3: return Int64(bitPattern: try readBigEndian(UInt64.self))
        default: throw WireError(.malformed, "expected an integer, found 0x\(String(lead, radix: 16))")
        }
    }

    mutating func readInteger<T: FixedWidthInteger>(as _: T.Type) throws(WireError) -> T {
        guard let value = T(exactly: try readInteger()) else { throw WireError(.malformed, "integer out of range for \(T.self)") }
        return value
    }

    mutating func readBool() throws(WireError) -> Bool {
        switch try readByte() {
        case 0xc3: return true
        case 0xc2, 0xc0: return false
        case let other:
            // Some encoders write booleans as 0/1.
            offset -= 1
            if other <= 0x7f { return try readInteger() != 0 }
            throw WireError(.malformed, "expected a boolean")
        }
    }

    /// Skips one value of any type (for unknown fields), bounding nesting depth.
    mutating func skip(depth: Int = 0) throws(WireError) {
        guard depth < 32 else { throw WireError(.malformed, "values nested too deeply") }
        let lead = try readByte()
        switch lead {
        case 0x00...0x7f, 0xe0...0xff, 0xc0, 0xc2, 0xc3: return
        case 0x80...0x8f: try skipItems(Int(lead & 0x0f) * 2, depth: depth)
        case 0x90...0x9f: try skipItems(Int(lead & 0x0f), depth: depth)
        case 0xa0...0xbf: _ = try take(Int(lead & 0x1f))
        case 0xcc, 0xd0: _ = try take(1)
        case 0xcd, 0xd1: _ = try take(2)
        case 0xce, 0xd2, 0xca: _ = try take(4)
        case 0xcf, 0xd3, 0xcb: _ = try take(8)
        case 0xd9, 0xc4: _ = try take(Int(try readByte()))
        case 0xda, 0xc5: _ = try take(Int(try readBigEndian(UInt16.self)))
        case 0xdb, 0xc6: _ = try take(Int(try readBigEndian(UInt32.self)))
        case 0xdc: try skipItems(Int(try readBigEndian(UInt16.self)), depth: depth)
        case 0xdd: try skipItems(Int(try readBigEndian(UInt32.self)), depth: depth)
        case 0xde: try skipItems(Int(try readBigEndian(UInt16.self)) * 2, depth: depth)
        case 0xdf: try skipItems(Int(try readBigEndian(UInt32.self)) * 2, depth: depth)
        case 0xd4: _ = try take(2)
        case 0xd5: _ = try take(3)
        case 0xd6: _ = try take(5)
        case 0xd7: _ = try take(9)
        case 0xd8: _ = try take(17)
        case 0xc7: _ = try take(Int(try readByte()) + 1)
        case 0xc8: _ = try take(Int(try readBigEndian(UInt16.self)) + 1)
        case 0xc9: _ = try take(Int(try readBigEndian(UInt32.self)) + 1)
        default: throw WireError(.malformed, "unknown msgpack byte 0x\(String(lead, radix: 16))")
        }
    }

    private mutating func skipItems(_ count: Int, depth: Int) throws(WireError) {
        // Every item takes at least one byte: a count beyond the bytes left is a lie.
        guard count <= remaining else { throw WireError(.truncated, "\(count) items in \(remaining) bytes") }
        for _ in 0..<count { try skip(depth: depth + 1) }
    }

    /// Reads a map, calling `field` with each key; `field` reads the value or returns false to
    /// have it skipped.
    mutating func readMap(_ field: (inout MessagePackReader, String) throws(WireError) -> Bool) throws(WireError) {
        let count = try readMapHeader()
        guard count <= remaining else { throw WireError(.truncated, "map of \(count) entries") }
        for _ in 0..<count {
            let key = try readString()
            if try !field(&self, key) { try skip() }
        }
    }
}
