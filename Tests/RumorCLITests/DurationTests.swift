import Testing

@testable import RumorCLI

struct DurationTests {
    @Test(arguments: [("500ms", 0.5), ("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86_400), ("90", 90), ("1.5s", 1.5)])
    func durationsParse(text: String, seconds: Double) throws {
        #expect(try parseDuration(text) == seconds)
    }

    @Test func aNonDuration_isNamedWithTheFlag() {
        #expect(throws: CLIError.self) { try parseDuration("5x", flag: "--max-clock-offset") }
        #expect(throws: CLIError.self) { try parseDuration("ms") }
    }
}
