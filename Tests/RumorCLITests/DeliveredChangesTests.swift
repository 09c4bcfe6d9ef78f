import Testing

@testable import RumorCLI

/// The watch's memory of what it printed, which decides what a replay after an agent restart
/// prints: each change once.
struct DeliveredChangesTests {
    static func line(
        _ key: String, _ timestamp: String, origin: String = "n1", change: String = "put", seq: UInt64 = 1, epoch: String = "e1"
    ) -> WatchLine {
        WatchLine(
            #"{"key":"\#(key)","value":"v","deleted":false,"timestamp":"\#(timestamp)","origin":"\#(origin)","ephemeral":false,"seq":\#(seq),"change":"\#(change)","epoch":"\#(epoch)"}"#
        )
    }

    @Test func aWatchLine_yieldsItsTopLevelFields_notThoseInTheValue() {
        let line = WatchLine(
            #"{"key":"a\"b","value":"{\"key\":\"x\",\"seq\":9}","deleted":false,"timestamp":"17.2","origin":"n2","replicas":["n1"],"seq":42,"change":"expire","epoch":"00ff"}"#
        )
        #expect(line.key == #"a\"b"#)
        #expect(line.timestamp == "17.2")
        #expect(line.origin == "n2")
        #expect(line.seq == 42)
        #expect(line.change == "expire")
        #expect(line.epoch == "00ff")
    }

    @Test func whenAReplayRepeatsAPrintedChange_itIsSkipped() {
        var delivered = DeliveredChanges()
        let admitted1 = delivered.admit(Self.line("k", "100.0"))
        #expect(admitted1)
        let admitted2 = delivered.admit(Self.line("k", "100.0", seq: 7, epoch: "e2"))
        #expect(!admitted2, "same version and change from a new change log")
    }

    @Test func whenTheVersionIsNewer_itIsPrinted() {
        var delivered = DeliveredChanges()
        let admitted3 = delivered.admit(Self.line("k", "100.0"))
        #expect(admitted3)
        let admitted4 = delivered.admit(Self.line("k", "100.1"))
        #expect(admitted4, "a later logical tick")
        let admitted5 = delivered.admit(Self.line("k", "101.0", change: "delete"))
        #expect(admitted5)
        let admitted6 = delivered.admit(Self.line("k", "101.0", origin: "n2"))
        #expect(admitted6, "same time, a writer that wins the tie")
    }

    @Test func whenTheSameVersionExpiresOrDeparts_itIsPrintedOnce() {
        var delivered = DeliveredChanges()
        let admitted7 = delivered.admit(Self.line("ttl", "100.0"))
        #expect(admitted7)
        let admitted8 = delivered.admit(Self.line("ttl", "100.0", change: "expire"))
        #expect(admitted8)
        let admitted9 = delivered.admit(Self.line("ttl", "100.0", change: "expire"))
        #expect(!admitted9, "an expiry reported again after a restart")
        let admitted10 = delivered.admit(Self.line("p", "100.0", change: "depart"))
        #expect(admitted10)
        let admitted11 = delivered.admit(Self.line("p", "100.0", change: "put"))
        #expect(admitted11, "its writer came back")
    }

    @Test func whenAReplicaCatchingUpShowsAnOlderVersion_itIsSkipped() {
        var delivered = DeliveredChanges()
        let admitted12 = delivered.admit(Self.line("k", "200.0"))
        #expect(admitted12)
        let admitted13 = delivered.admit(Self.line("k", "150.3"))
        #expect(!admitted13)
        let admitted14 = delivered.admit(Self.line("k", "200.0"))
        #expect(!admitted14, "the printed version arriving later")
    }

    @Test func versionsOrderByMillisecondsThenLogicalThenOrigin() throws {
        let versions = try ["9.5@b", "10.0@a", "10.0@b", "10.1@a", "100.0@a"].map { text in
            let parts = text.split(separator: "@")
            return try #require(DeliveredChanges.Version(timestamp: String(parts[0]), origin: String(parts[1])))
        }
        #expect(versions == versions.sorted())
        #expect(DeliveredChanges.Version(timestamp: "10", origin: "a") == nil)
    }

    @Test func aLineWithoutAVersion_isAlwaysNews() {
        var delivered = DeliveredChanges()
        let admitted15 = delivered.admit(WatchLine(#"{"something":"else"}"#))
        #expect(admitted15)
        let admitted16 = delivered.admit(WatchLine(#"{"something":"else"}"#))
        #expect(admitted16)
    }
}
