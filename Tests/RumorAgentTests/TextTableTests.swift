@testable import RumorAgent
import Testing

/// The text tables of `rumor list`, `rumor members` and `rumor keys list`: display width per
/// grapheme cluster, and no cell ever cut.
struct TextTableTests {
    @Test func wideCharactersAndEmojiTakeTwoColumnsAndMarksNone() {
        #expect(DisplayWidth.of("key") == 3)
        #expect(DisplayWidth.of("ключ") == 4)
        #expect(DisplayWidth.of("日本語") == 6)
        #expect(DisplayWidth.of("🔑") == 2)
        #expect(DisplayWidth.of("ключ/日本語/🔑") == 14)
        #expect(DisplayWidth.of("e\u{301}") == 1, "e and a combining acute accent are one character")
        #expect(DisplayWidth.of("🇯🇵") == 2, "a flag is one character")
        #expect(DisplayWidth.of("👩‍👩‍👧") == 2, "an emoji joined by ZWJ is one character")
        #expect(DisplayWidth.of("👍🏽") == 2, "an emoji with a skin tone is one character")
        #expect(DisplayWidth.of("1️⃣") == 2, "a keycap is drawn as emoji")
        #expect(DisplayWidth.of("❤") == 1 && DisplayWidth.of("❤️") == 2, "U+FE0F asks a text symbol to be emoji")
        #expect(DisplayWidth.of("ｆｕｌｌ") == 8, "fullwidth forms")
        #expect(DisplayWidth.of("한국어") == 6)
        #expect(DisplayWidth.of("\u{200B}") == 0, "a zero-width space alone takes no column")
    }

    @Test func whenAKeyHasWideCharactersAndEmoji_itIsShownWholeAndTheColumnsAfterItLineUp() {
        let table = TextTable.render(
            ["KEY", "VALUE", "ORIGIN"],
            [["ключ/日本語/🔑", #"{"k":"🔑"}"#, "n1"], ["a", "1", "n2"]])
        let lines = table.split(separator: "\n").map(String.init)
        #expect(lines[1].hasPrefix(#"ключ/日本語/🔑  {"k":"🔑"}  n1"#), "\(lines[1])")
        #expect(!table.contains("\u{FFFD}"), "no character is cut in half")
        // Where ORIGIN starts, in display columns, is the same on every line.
        let originColumns = lines.map { line in
            DisplayWidth.of(String(line[..<line.range(of: line == lines[0] ? "ORIGIN" : "n")!.lowerBound]))
        }
        #expect(Set(originColumns).count == 1, "\(originColumns)")
    }

    @Test func aJSONValueKeepsItsClosingBraceWhateverTheColumnWidths() {
        let value = #"{"name":"日本","emoji":"🚀"}"#
        let table = TextTable.render(["KEY", "VALUE", "TIMESTAMP"], [["k", value, "1"], ["a-longer-key", "{}", "2"]])
        #expect(table.contains(value + "  "), "\(table)")
        #expect(table.contains("{}" + String(repeating: " ", count: DisplayWidth.of(value) - 2 + 2) + "2"))
    }

    @Test func cellsKeepTheirOwnSpacesAndShowControlCharactersAsEscapes() {
        let table = TextTable.render(["KEY", "VALUE"], [["  indented", "two\nlines\tand a tab "], ["k", ""]])
        let lines = table.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.count == 3, "each row is one line: \(lines)")
        #expect(lines[1] == #"  indented  two\nlines\tand a tab "#)
        #expect(lines[2] == "k", "an empty last cell adds no trailing padding")
    }
}
