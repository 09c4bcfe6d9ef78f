import Testing

@testable import RumorCore

/// The features a peer gets, by the highest protocol version it understands (memberlist's table).
struct ProtocolVersionsTests {
    static func peer(protocolMax: UInt8) -> ProtocolVersions {
        var versions = ProtocolVersions.rumor
        versions.protocolMax = protocolMax
        return versions
    }

    @Test func whenPeerUnderstandsVersion2_getsNoStreamPingNackOrChecksum() {
        let versions = Self.peer(protocolMax: 2)
        #expect(!versions.acceptsStreamPings && !versions.supportsNacks && !versions.acceptsChecksums)
    }

    @Test func eachVersionFrom3To5_addsOneFeature() {
        #expect(Self.peer(protocolMax: 3).acceptsStreamPings && !Self.peer(protocolMax: 3).supportsNacks)
        #expect(Self.peer(protocolMax: 4).supportsNacks && !Self.peer(protocolMax: 4).acceptsChecksums)
        #expect(Self.peer(protocolMax: 5).acceptsChecksums)
    }

    @Test func rumorItself_acceptsEveryFeature() {
        let rumor = ProtocolVersions.rumor
        #expect(rumor.acceptsStreamPings && rumor.supportsNacks && rumor.acceptsChecksums)
    }
}
