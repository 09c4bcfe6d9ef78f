import ArgumentParser
import RumorAPI
@testable import RumorCLI
import Testing

/// The one exit-status table of `rumor` (docs/guide/cli.md, "Output and exit statuses"; `rumor context`).
struct ExitStatusTests {
    @Test func usageUnreachableAndNotAnAgentHaveTheirOwnStatusAndEveryOtherCodeIsAnAgentError() {
        #expect(ExitStatus(errorCode: "bad_arguments") == .usage)
        #expect(ExitStatus(errorCode: "agent_unreachable") == .unreachable)
        #expect(ExitStatus(errorCode: "bad_response") == .notAnAgent)
        for code in ErrorCode.allCases where ![.badArguments, .agentUnreachable, .badResponse].contains(code) {
            #expect(ExitStatus(errorCode: code.rawValue) == .agentError, "\(code.rawValue)")
        }
    }

    @Test func theStatusesAreSysexitsAndArgumentParsersUsageStatus() {
        #expect(ExitStatus.allCases.map(\.rawValue) == [0, 1, 64, 69, 76])
        #expect(ExitStatus.usage.rawValue == ExitCode.validationFailure.rawValue, "argument-parser's usage errors exit 64 too")
    }

    @Test func everyCodeTheTableNamesIsAnErrorCode() {
        let known = Set(ErrorCode.allCases.map(\.rawValue))
        for code in ["bad_arguments", "agent_unreachable", "bad_response"] { #expect(known.contains(code), "\(code)") }
        #expect(ExitStatus.allCases.allSatisfy { !$0.meaning.isEmpty && !$0.meaning.contains("\n") })
    }

    @Test func whenFromIsNegativeOrNotAWholeNumber_theErrorNamesTheFlagAndTheRange() throws {
        #expect(try WatchCommand.seq(fromFlag: "0") == 0)
        #expect(try WatchCommand.seq(fromFlag: "42") == 42)
        for text in ["-5", "-0x1", "1.5", "abc", "", "18446744073709551616"] {
            #expect(throws: CLIError.self) { try WatchCommand.seq(fromFlag: text) }
            do {
                _ = try WatchCommand.seq(fromFlag: text)
            } catch {
                #expect(error.code == "bad_arguments")
                #expect(error.message.contains("--from") && error.message.contains("'\(text)'") && error.message.contains("from 0 to"))
            }
        }
    }
}
