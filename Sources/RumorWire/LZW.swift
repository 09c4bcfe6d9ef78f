/// LZW as Go's `compress/lzw` does it with LSB bit order and 8-bit literals, which memberlist
/// uses for compressed messages: codes of 9 to 12 bits, 256 = clear, 257 = end.
enum LZW {
    private static let clearCode: UInt32 = 256
    private static let endCode: UInt32 = 257
    private static let maximumCode: UInt32 = 4095
    private static let maximumWidth = 12

    static func compress(_ input: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(input.count / 2 + 8)
        var bits: UInt32 = 0
        var bitCount = 0
        var width = 9
        var highest: UInt32 = 257
        var overflow: UInt32 = 512
        var table: [UInt32: UInt32] = [:]

        func write(_ code: UInt32) {
            bits |= code << UInt32(bitCount)
            bitCount += width
            while bitCount >= 8 {
                output.append(UInt8(truncatingIfNeeded: bits))
                bits >>= 8
                bitCount -= 8
            }
        }
        /// Advances the next free code; returns false when the table was full and got cleared.
        func nextCode() -> Bool {
            highest += 1
            if highest == overflow {
                width += 1
                overflow <<= 1
            }
            if highest == maximumCode {
                write(clearCode)
                width = 9
                highest = 257
                overflow = 512
                table.removeAll(keepingCapacity: true)
                return false
            }
            return true
        }

        write(clearCode)
        guard var code = input.first.map(UInt32.init) else {
            write(endCode)
            if bitCount > 0 { output.append(UInt8(truncatingIfNeeded: bits)) }
            return output
        }
        for byte in input.dropFirst() {
            let key = code << 8 | UInt32(byte)
            if let known = table[key] {
                code = known
                continue
            }
            write(code)
            code = UInt32(byte)
            if nextCode() { table[key] = highest }
        }
        write(code)
        _ = nextCode()
        write(endCode)
        if bitCount > 0 { output.append(UInt8(truncatingIfNeeded: bits)) }
        return output
    }

    /// Decompresses, refusing to produce more than `limit` bytes.
    static func decompress(_ input: ArraySlice<UInt8>, limit: Int) throws(WireError) -> [UInt8] {
        var prefix = [UInt16](repeating: 0, count: 4096)
        var suffix = [UInt8](repeating: 0, count: 4096)
        var scratch = [UInt8](repeating: 0, count: 4096)
        var output: [UInt8] = []
        var bits: UInt32 = 0
        var bitCount = 0
        var width = 9
        var highest: UInt32 = 257
        var overflow: UInt32 = 512
        var last: UInt32? = nil
        var index = input.startIndex

        while true {
            while bitCount < width {
                guard index < input.endIndex else { throw WireError(.truncated, "LZW stream ended without an end code") }
                bits |= UInt32(input[index]) << UInt32(bitCount)
                index += 1
                bitCount += 8
            }
            let code = bits & ((1 << UInt32(width)) - 1)
            bits >>= UInt32(width)
            bitCount -= width

            if code == clearCode {
                width = 9
                highest = endCode
                overflow = 512
                last = nil
                continue
            }
            if code == endCode { return output }
            guard code <= highest else { throw WireError(.malformed, "invalid LZW code \(code)") }
            // Spell the code backwards into scratch, then append.
            var position = scratch.count
            var current = code
            var firstByte: UInt8
            if code == highest {
                guard let last else { throw WireError(.malformed, "LZW code refers to an undefined entry") }
                // KwKwK: the entry being defined is last + first byte of last.
                var walk = last
                while walk >= clearCode { walk = UInt32(prefix[Int(walk)]) }
                position -= 1
                scratch[position] = UInt8(walk)
                current = last
            }
            while current >= clearCode {
                position -= 1
                guard position >= 0 else { throw WireError(.malformed, "LZW chain too long") }
                scratch[position] = suffix[Int(current)]
                current = UInt32(prefix[Int(current)])
            }
            position -= 1
            guard position >= 0 else { throw WireError(.malformed, "LZW chain too long") }
            scratch[position] = UInt8(current)
            firstByte = UInt8(current)
            guard output.count + (scratch.count - position) <= limit else {
                throw WireError(.tooLarge, "decompressed data exceeds \(limit) bytes")
            }
            output.append(contentsOf: scratch[position...])
            if let last, highest < 4096 {
                suffix[Int(highest)] = firstByte
                prefix[Int(highest)] = UInt16(last)
            }
            last = code
            highest += 1
            if highest >= overflow {
                if width == maximumWidth {
                    last = nil
                    highest -= 1
                } else {
                    width += 1
                    overflow = 1 << UInt32(width)
                }
            }
        }
    }
}

/// CRC-32 (IEEE), as Go's `hash/crc32.ChecksumIEEE`.
enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }

    static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xffff_ffff
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8) }
        return crc ^ 0xffff_ffff
    }
}
