/// The query string of an API request, checked before any route reads it: every name and value
/// MUST be valid UTF-8 once percent-decoded, as request bodies and the CLI's arguments must be.
///
/// Without the check a key such as `?key=%FF` would be read as U+FFFD, and a read or watch would
/// name another key than the one sent. Bytes in, a verdict out: no HTTP here.
public enum QueryText {
    /// Refuses a query whose names or values are not UTF-8 after percent-decoding.
    /// - Parameter query: the raw query, as on the request line (without the `?`).
    /// - Throws: `AgentError` `bad_request` naming the parameter; nothing else happens.
    public static func validate(_ query: Substring) throws(AgentError) {
        for pair in query.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let equals = pair.firstIndex(of: UInt8(ascii: "="))
            let name = equals.map { pair[..<$0] } ?? pair[...]
            let value = equals.map { pair[pair.index(after: $0)...] } ?? pair[pair.endIndex...]
            let decodedName = percentDecoded(name)
            guard String(validating: decodedName, as: UTF8.self) != nil,
                String(validating: percentDecoded(value), as: UTF8.self) != nil
            else {
                let shown = String(decoding: decodedName, as: UTF8.self)
                throw AgentError(
                    code: .badRequest,
                    message: "the query parameter '\(shown)' is not valid UTF-8 once percent-decoded",
                    hint: "percent-encode the UTF-8 bytes of the text (e.g. %C3%A9 for é); keys and prefixes are UTF-8 text")
            }
        }
    }

    /// The bytes `%XX` escapes stand for; a `%` not followed by two hex digits stays as it is
    /// (as the router reads it).
    static func percentDecoded(_ text: Substring.UTF8View.SubSequence) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count)
        var index = text.startIndex
        while index < text.endIndex {
            let byte = text[index]
            if byte == UInt8(ascii: "%"),
                let high = text.index(index, offsetBy: 1, limitedBy: text.endIndex), high < text.endIndex,
                let low = text.index(index, offsetBy: 2, limitedBy: text.endIndex), low < text.endIndex,
                let first = hexValue(text[high]), let second = hexValue(text[low])
            {
                bytes.append(first << 4 | second)
                index = text.index(after: low)
            } else {
                bytes.append(byte)
                index = text.index(after: index)
            }
        }
        return bytes
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
