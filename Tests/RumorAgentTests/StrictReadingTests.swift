import Foundation
import GRDB
import Testing

@testable import RumorAgent

/// Issue 29's small items: JSON read strictly (no trailing comma, no key given twice), a blank
/// API token refused at start, and a full disk named as the cause when start-up cannot save.
struct StrictJSONTests {
    private func problem(_ text: String) -> StrictJSON.Problem? {
        do {
            try StrictJSON.check(text)
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: [
        #"{}"#, #"[]"#, #"0"#, #"-1.5e+3"#, #""text""#, #"null"#, #"true"#, " \n{ \"a\" : [1, 2.0, {\"b\": false}], \"c\": null }\n",
        #"{"a":{"a":1},"b":{"a":2}}"#, #"{"s":"é \u00e9 \ud83d\ude00 \" \\ \/ \n"}"#, #"[[[],[]],{}]"#,
    ])
    func validJSONPasses(text: String) {
        #expect(problem(text) == nil, "\(text): \(String(describing: problem(text)))")
        #expect((try? JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed)) != nil, "Foundation agrees: \(text)")
    }

    @Test func trailingCommasAreRefusedWithTheirPlace() {
        #expect(problem(#"{"key":"k","value":"v",}"#) == StrictJSON.Problem(message: "trailing comma before '}'", line: 1, column: 24))
        #expect(problem("[1,\n 2,\n]")?.description == "trailing comma before ']' at line 3, column 1")
        #expect(problem(#"{"a":[1,]}"#)?.message == "trailing comma before ']'")
    }

    @Test func aKeyGivenTwiceInOneObjectIsRefused_howeverItIsSpelt() {
        #expect(problem(#"{"key":"a","key":"b"}"#) == StrictJSON.Problem(message: #"duplicate key "key" in one object"#, line: 1, column: 12))
        #expect(problem(#"{"a":1,"\u0061":2}"#)?.message == #"duplicate key "a" in one object"#)
        #expect(problem(#"{"x":{"a":1,"b":{},"a":2}}"#)?.message == #"duplicate key "a" in one object"#)
        #expect(problem(#"[{"a":1},{"a":1}]"#) == nil, "sibling objects each have their own keys")
    }

    @Test(arguments: [#"{"a":1"#, #"{"a" 1}"#, #"[1 2]"#, #"{"a":1}}"#, #"{a:1}"#, #"01"#, #"1."#, "\"a\tb\"", #"tru"#, #"{"a":1} x"#, ""])
    func otherBrokenJSONIsRefused(text: String) {
        #expect(problem(text) != nil, "\(text)")
    }

    @Test func deepNestingCostsNoStack() {
        let deep = String(repeating: "[", count: 200_000) + String(repeating: "]", count: 200_000)
        #expect(problem(deep) == nil)
        #expect(problem(String(repeating: "{\"a\":", count: 100_000))?.message == "expected a value, found the end")
    }

    @Test func apiBodiesAndConfigFilesAreReadStrictly() {
        do {
            _ = try APIRequests.put(Array(#"{"key":"k","value":"v",}"#.utf8))
            Issue.record("a trailing comma was accepted")
        } catch {
            #expect(error.code == .badRequest && error.message.contains("trailing comma before '}' at line 1, column 24"))
        }
        do {
            _ = try APIRequests.put(Array(#"{"key":"k","value":"v","key":"other"}"#.utf8))
            Issue.record("a duplicate key was accepted")
        } catch {
            #expect(error.code == .badRequest && error.message.contains(#"duplicate key "key""#))
        }
        do {
            _ = try ConfigFile.parse("{\n  \"name\": \"a\",\n  \"name\": \"b\"\n}", path: "rumor.json")
            Issue.record("a duplicate key was accepted")
        } catch {
            #expect(error.code == .badConfig && error.message.contains(#"duplicate key "name" in one object at line 3, column 3"#))
            #expect(!error.hint.isEmpty)
        }
    }
}

struct APITokenTests {
    @Test(arguments: ["", " ", "\t\n", " secret", "secret ", "se\u{7}cret"])
    func aTokenThatCanMatchNoRequestIsRefused(token: String) {
        var configuration = AgentConfiguration(name: "n")
        configuration.apiToken = token
        do {
            try configuration.validate()
            Issue.record("token \(token.debugDescription) accepted")
        } catch {
            #expect(error.code == .badArguments && error.message.hasPrefix("--api-token ") && !error.hint.isEmpty)
        }
    }

    @Test func aVisibleTokenIsTaken() throws {
        var configuration = AgentConfiguration(name: "n")
        configuration.apiToken = "s3cret-token/+="
        try configuration.validate()
        #expect(AgentConfiguration.apiTokenProblem("a b") == nil, "inner spaces travel in a header")
    }
}

struct DiskFullHintTests {
    static let otherwise = "check that --data-dir is writable and not used by another agent"
    static let roomy = DiskFull.FreeSpace(bytes: 10 << 30, inodes: 100_000)

    private func hint(_ error: any Error, free: DiskFull.FreeSpace?) -> String {
        DiskFull.hint(for: error, free: free, directory: "/data", otherwise: Self.otherwise)
    }

    @Test func aFullDiskIsNamed_whateverSaysSo() {
        let full = [
            hint(DatabaseError(resultCode: .SQLITE_FULL), free: Self.roomy),
            hint(POSIXError(.ENOSPC), free: nil),
            hint(CocoaError(.fileWriteOutOfSpace), free: nil),
            hint(DatabaseError(resultCode: .SQLITE_IOERR), free: DiskFull.FreeSpace(bytes: 0, inodes: 10)),
            hint(DatabaseError(resultCode: .SQLITE_CANTOPEN), free: DiskFull.FreeSpace(bytes: 1 << 20, inodes: 0)),
        ]
        for text in full {
            #expect(text.contains("/data is full (ENOSPC)") && text.contains("free space"), "\(text)")
        }
        #expect(hint(POSIXError(.ENOSPC), free: DiskFull.FreeSpace(bytes: 4096, inodes: 3)).contains("(4 KiB and 3 inodes free)"))
    }

    @Test func otherFailuresKeepTheirHint() {
        #expect(hint(DatabaseError(resultCode: .SQLITE_BUSY), free: Self.roomy) == Self.otherwise)
        #expect(hint(POSIXError(.EACCES), free: Self.roomy) == Self.otherwise)
        #expect(hint(POSIXError(.EACCES), free: nil) == Self.otherwise)
    }

    @Test func freeSpaceIsReadFromTheNearestExistingDirectory() throws {
        let free = try #require(DiskFull.freeSpace(at: NSTemporaryDirectory() + "/no/such/dir"))
        #expect(free.inodes > 0 || free.bytes > 0)
    }
}
