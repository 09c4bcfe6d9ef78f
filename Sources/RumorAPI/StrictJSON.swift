/// A strict reading of JSON text (RFC 8259), run before Foundation's decoder, which accepts
/// two things a careful reader should not: a trailing comma (`{"a":1,}`, `[1,]`) and an object
/// that names a key twice (it keeps the first value, silently: `{"key":"a","key":"b"}` is read
/// as "a" where another reader takes "b"). Both are refused here with the line and column.
///
/// One pass over the bytes with an explicit stack (no recursion, so nesting depth costs memory,
/// not the thread's stack); strings are decoded only as object keys, to compare them.
public enum StrictJSON {
    /// What is wrong with a JSON text, and where (1-based line and column, in bytes).
    public struct Problem: Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var line: Int
        public var column: Int

        public init(message: String, line: Int, column: Int) {
            self.message = message
            self.line = line
            self.column = column
        }

        public var description: String { "\(message) at line \(line), column \(column)" }
    }

    /// Checks that `bytes` hold exactly one JSON value, with no trailing comma and no key named
    /// twice in one object.
    /// - Throws: `Problem`, the first one found.
    public static func check(_ bytes: [UInt8]) throws(Problem) {
        var reader = Reader(bytes: bytes)
        try reader.document()
    }

    public static func check(_ text: String) throws(Problem) {
        try check(Array(text.utf8))
    }

    private enum Container {
        case object(keys: Set<String>)
        case array
    }

    private struct Reader {
        let bytes: [UInt8]
        var index = 0
        var stack: [Container] = []

        init(bytes: [UInt8]) {
            self.bytes = bytes
            // A UTF-8 byte-order mark is allowed before the text (RFC 8259 §8.1: may be ignored).
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
        }

        /// What the reader expects next.
        enum Expectation {
            case value
            /// Just after `{`: a key, or `}`.
            case firstKey
            /// Just after `[`: a value, or `]`.
            case firstElement
            /// After a member or element: `,` or the container's end.
            case commaOrEnd
            case endOfText
        }

        mutating func document() throws(Problem) {
            var expectation = Expectation.value
            while true {
                skipSpace()
                switch expectation {
                case .value:
                    expectation = try value()
                case .firstKey:
                    if peek == UInt8(ascii: "}") {
                        index += 1
                        expectation = closed()
                    } else {
                        try key()
                        expectation = .value
                    }
                case .firstElement:
                    if peek == UInt8(ascii: "]") {
                        index += 1
                        expectation = closed()
                    } else {
                        expectation = .value
                    }
                case .commaOrEnd:
                    let container = stack[stack.count - 1]
                    let byte = try next("',' or the end of the \(name(container))")
                    switch (byte, container) {
                    case (UInt8(ascii: ","), .object):
                        skipSpace()
                        if peek == UInt8(ascii: "}") { throw problem("trailing comma before '}'", at: index) }
                        try key()
                        expectation = .value
                    case (UInt8(ascii: ","), .array):
                        skipSpace()
                        if peek == UInt8(ascii: "]") { throw problem("trailing comma before ']'", at: index) }
                        expectation = .value
                    case (UInt8(ascii: "}"), .object), (UInt8(ascii: "]"), .array):
                        expectation = closed()
                    default:
                        throw problem("expected ',' or the end of the \(name(container)), found \(shown(byte))", at: index - 1)
                    }
                case .endOfText:
                    if index < bytes.count { throw problem("unexpected \(shown(bytes[index])) after the JSON value", at: index) }
                    return
                }
            }
        }

        /// Closes the innermost container; what follows it.
        mutating func closed() -> Expectation {
            stack.removeLast()
            return stack.isEmpty ? .endOfText : .commaOrEnd
        }

        /// One value: a scalar read whole, or a container opened.
        mutating func value() throws(Problem) -> Expectation {
            let start = index
            let byte = try next("a value")
            switch byte {
            case UInt8(ascii: "{"):
                stack.append(.object(keys: []))
                return .firstKey
            case UInt8(ascii: "["):
                stack.append(.array)
                return .firstElement
            case UInt8(ascii: "\""):
                index = start
                _ = try string(decoding: false)
            case UInt8(ascii: "t"): try literal("true", from: start)
            case UInt8(ascii: "f"): try literal("false", from: start)
            case UInt8(ascii: "n"): try literal("null", from: start)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                index = start
                try number()
            default:
                throw problem("expected a value, found \(shown(byte))", at: start)
            }
            return stack.isEmpty ? .endOfText : .commaOrEnd
        }

        /// `"key":` in the innermost object; refuses a key it already holds.
        mutating func key() throws(Problem) {
            let start = index
            guard peek == UInt8(ascii: "\"") else {
                throw problem("expected a key in quotes, found \(peek.map(shown) ?? "the end")", at: start)
            }
            let key = try string(decoding: true)
            guard case .object(var keys) = stack[stack.count - 1] else { return }
            guard keys.insert(key).inserted else { throw problem("duplicate key \"\(key)\" in one object", at: start) }
            stack[stack.count - 1] = .object(keys: keys)
            skipSpace()
            let colon = index
            guard try next("':'") == UInt8(ascii: ":") else { throw problem("expected ':' after the key", at: colon) }
        }

        /// A string from its opening quote; its decoded text when `decoding`.
        mutating func string(decoding: Bool) throws(Problem) -> String {
            let start = index
            index += 1
            var scalars = String.UnicodeScalarView()
            var plainStart = index
            while true {
                guard index < bytes.count else { throw problem("unterminated string", at: start) }
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    if decoding { scalars.append(contentsOf: decodedUTF8(plainStart..<index)) }
                    index += 1
                    return String(scalars)
                }
                if byte < 0x20 { throw problem("control character in a string (escape it)", at: index) }
                guard byte == UInt8(ascii: "\\") else {
                    index += 1
                    continue
                }
                if decoding { scalars.append(contentsOf: decodedUTF8(plainStart..<index)) }
                let escape = index
                index += 1
                guard index < bytes.count else { throw problem("unterminated string", at: start) }
                let kind = bytes[index]
                index += 1
                switch kind {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scalars.append(Unicode.Scalar(kind))
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"): scalars.append(try unicodeEscape(at: escape))
                default: throw problem("unknown escape \\\(shown(kind))", at: escape)
                }
                plainStart = index
            }
        }

        /// The scalar of `\uXXXX` (a surrogate pair taking two escapes); U+FFFD for a lone
        /// surrogate, as Foundation reads one.
        mutating func unicodeEscape(at escape: Int) throws(Problem) -> Unicode.Scalar {
            let high = try hex4(escape)
            guard (0xD800...0xDBFF).contains(high) else { return Unicode.Scalar(high) ?? "\u{FFFD}" }
            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                return "\u{FFFD}"
            }
            let mark = index
            index += 2
            let low = try hex4(mark)
            guard (0xDC00...0xDFFF).contains(low) else {
                index = mark
                return "\u{FFFD}"
            }
            return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)) ?? "\u{FFFD}"
        }

        mutating func hex4(_ escape: Int) throws(Problem) -> UInt32 {
            guard index + 4 <= bytes.count else { throw problem("\\u needs four hex digits", at: escape) }
            var value: UInt32 = 0
            for byte in bytes[index..<index + 4] {
                guard let digit = Self.hexDigit(byte) else { throw problem("\\u needs four hex digits", at: escape) }
                value = value << 4 | digit
            }
            index += 4
            return value
        }

        static func hexDigit(_ byte: UInt8) -> UInt32? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
            default: nil
            }
        }

        func decodedUTF8(_ range: Range<Int>) -> String.UnicodeScalarView {
            String(decoding: bytes[range], as: UTF8.self).unicodeScalars
        }

        /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
        mutating func number() throws(Problem) {
            let start = index
            if peek == UInt8(ascii: "-") { index += 1 }
            if peek == UInt8(ascii: "0") {
                index += 1
            } else if try digits() == 0 {
                throw problem("a number needs digits", at: start)
            }
            if peek == UInt8(ascii: ".") {
                index += 1
                guard try digits() > 0 else { throw problem("a number needs digits after '.'", at: start) }
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                index += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
                guard try digits() > 0 else { throw problem("a number needs digits in its exponent", at: start) }
            }
        }

        mutating func digits() throws(Problem) -> Int {
            let start = index
            while let byte = peek, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { index += 1 }
            return index - start
        }

        mutating func literal(_ word: String, from start: Int) throws(Problem) {
            let expected = Array(word.utf8)
            guard bytes[start...].starts(with: expected) else { throw problem("expected \(word)", at: start) }
            index = start + expected.count
        }

        mutating func skipSpace() {
            while let byte = peek, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 }
        }

        var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func next(_ expected: String) throws(Problem) -> UInt8 {
            guard index < bytes.count else { throw problem("expected \(expected), found the end", at: index) }
            index += 1
            return bytes[index - 1]
        }

        func name(_ container: Container) -> String {
            if case .object = container { "object" } else { "array" }
        }

        func shown(_ byte: UInt8) -> String {
            if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
            let digits = String(byte, radix: 16, uppercase: true)
            return "byte 0x" + (digits.count < 2 ? "0" : "") + digits
        }

        func problem(_ message: String, at offset: Int) -> Problem {
            var line = 1
            var lineStart = 0
            for position in 0..<min(offset, bytes.count) where bytes[position] == 0x0A {
                line += 1
                lineStart = position + 1
            }
            return Problem(message: message, line: line, column: offset - lineStart + 1)
        }
    }
}
