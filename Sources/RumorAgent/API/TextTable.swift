/// An aligned text table for a terminal (`rumor members`, `rumor list`, `rumor keys list`).
///
/// Columns line up by display width (`DisplayWidth`), not by bytes, UTF-16 units or characters,
/// and no cell is ever cut or trimmed: a key such as `ключ/日本語/🔑` and a JSON value's closing
/// `}` are shown whole, however long. A control character inside a cell (a value's newline or
/// tab) is shown as an escape (`\n`, `\t`, `\u{1B}`) so that each row stays one line.
enum TextTable {
    /// The table, one line per row, columns two spaces apart; the last non-empty cell of a row is
    /// not padded, so no line ends in spaces the cells did not have.
    static func render(_ header: [String], _ rows: [[String]]) -> String {
        let all = ([header] + rows).map { $0.map(visible) }
        let widths = header.indices.map { column in all.map { DisplayWidth.of($0[column]) }.max() ?? 0 }
        return all.map { row in
            let last = row.lastIndex { !$0.isEmpty } ?? 0
            return row[...last].enumerated().map { column, cell in
                column == last ? cell : cell + String(repeating: " ", count: widths[column] - DisplayWidth.of(cell))
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// `cell` with each control character as an escape, everything else unchanged.
    static func visible(_ cell: String) -> String {
        guard cell.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return cell }
        var out = ""
        for scalar in cell.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.properties.generalCategory == .control:
                out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

/// How many terminal columns text takes, counted per grapheme cluster (what a terminal draws as
/// one character): 2 for East Asian wide and fullwidth characters (Unicode's East Asian Width
/// W and F, UAX #11) and for emoji shown as emoji, 0 for a cluster of marks, format or control
/// characters alone, 1 for the rest. The rules of `wcwidth(3)`, applied to whole clusters, so a
/// flag, a keycap or an emoji with a skin tone or joiners counts once.
enum DisplayWidth {
    static func of(_ text: String) -> Int {
        text.reduce(0) { $0 + of($1) }
    }

    static func of(_ character: Character) -> Int {
        let scalars = character.unicodeScalars
        guard let first = scalars.first else { return 0 }
        if scalars.allSatisfy({ isZeroWidth($0) }) { return 0 }
        let properties = first.properties
        if properties.isEmojiPresentation { return 2 }
        // A character drawn as text by default (❤, ☺, 1) asked to be emoji (U+FE0F): ❤️, 1️⃣.
        if properties.isEmoji, scalars.contains("\u{FE0F}") { return 2 }
        return isWide(first.value) ? 2 : 1
    }

    private static func isZeroWidth(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .nonspacingMark, .enclosingMark, .format, .control: true
        default: false
        }
    }

    /// East Asian Width W or F (EastAsianWidth.txt), emoji aside.
    private static func isWide(_ value: UInt32) -> Bool {
        wideRanges.contains { $0.contains(value) }
    }

    private static let wideRanges: [ClosedRange<UInt32>] = [
        0x1100...0x115F,  // Hangul Jamo initial consonants
        0x2329...0x232A,  // angle brackets
        0x2E80...0x303E,  // CJK radicals, Kangxi, ideographic description, CJK symbols and punctuation
        0x3041...0x33FF,  // Hiragana, Katakana, Bopomofo, Hangul compatibility Jamo, Kanbun, CJK compatibility
        0x3400...0x4DBF,  // CJK unified ideographs extension A
        0x4E00...0x9FFF,  // CJK unified ideographs
        0xA000...0xA4CF,  // Yi
        0xA960...0xA97F,  // Hangul Jamo extended A
        0xAC00...0xD7A3,  // Hangul syllables
        0xF900...0xFAFF,  // CJK compatibility ideographs
        0xFE10...0xFE19,  // vertical forms
        0xFE30...0xFE6F,  // CJK compatibility forms, small form variants
        0xFF00...0xFF60,  // fullwidth forms
        0xFFE0...0xFFE6,  // fullwidth signs
        0x16FE0...0x18CFF,  // Tangut, Khitan and ideographic symbols
        0x1B000...0x1B2FF,  // Kana supplement and extensions, Nushu
        0x1F200...0x1F2FF,  // enclosed ideographic supplement
        0x20000...0x2FFFD,  // CJK extensions B to F, compatibility supplement
        0x30000...0x3FFFD,  // CJK extensions G and H
    ]
}
