import RumorCore
import Testing

@testable import RumorWire

struct EncryptionTests {
    static let key16 = [UInt8](repeating: 1, count: 16)
    static let key24 = [UInt8](repeating: 2, count: 24)
    static let key32 = [UInt8](repeating: 3, count: 32)
    static let message = Message.ping(Ping(sequenceNumber: 42, target: "b"))

    @Test(arguments: [key16, key24, key32])
    func packetsRoundTripWithEveryKeySize(key: [UInt8]) throws {
        let codec = PacketCodec(label: "red", keyring: try Keyring(keys: [key]))
        let packet = codec.encode([Self.message], checksum: true)
        #expect(packet.count == codec.encode([Self.message], checksum: true).count)
        #expect(try codec.decode(packet).messages == [Self.message])
    }

    @Test func encryptedPacketsHideTheirContent() throws {
        let plain = PacketCodec().encode([.user(Array("secret-value".utf8))], compress: false)
        let sealed = PacketCodec(keyring: try Keyring(keys: [Self.key32])).encode([.user(Array("secret-value".utf8))], compress: false)
        #expect(sealed.count == plain.count + GossipCipher.overhead)
        #expect(!String(decoding: sealed, as: UTF8.self).contains("secret"))
        #expect(sealed.first == 1, "memberlist encryption version 1")
    }

    @Test func whenNoInstalledKeyFits_packetIsRejectedAsDecryptFailure() throws {
        let sender = PacketCodec(keyring: try Keyring(keys: [Self.key16]))
        let receiver = PacketCodec(keyring: try Keyring(keys: [Self.key32]))
        #expect(throws: WireError(.decryptionFailed, "no installed key decrypts the message")) {
            try receiver.decode(sender.encode([Self.message]))
        }
    }

    @Test func everyInstalledKeyIsTriedOnReceipt() throws {
        let sender = PacketCodec(keyring: try Keyring(keys: [Self.key16]))
        let receiver = PacketCodec(keyring: try Keyring(keys: [Self.key32, Self.key24, Self.key16]))
        #expect(try receiver.decode(sender.encode([Self.message])).messages == [Self.message])
    }

    @Test func plaintextIsRefusedWhenEncryptionIsOn() throws {
        let receiver = PacketCodec(keyring: try Keyring(keys: [Self.key16]))
        let plain = PacketCodec().encode([.alive(Alive(incarnation: 1, node: "x", address: NodeAddress(ip: [127, 0, 0, 1], port: 1), meta: [], versions: .rumor))])
        #expect(throws: WireError.self) { try receiver.decode(plain) }
        let streamReceiver = StreamCodec(keyring: try Keyring(keys: [Self.key16]))
        #expect(throws: WireError(.notEncrypted, "a plaintext stream; this node requires encryption")) {
            try streamReceiver.decode(StreamCodec().encode(.user([1, 2, 3])))
        }
    }

    /// The three steps that move a plaintext swarm to encryption (Consul's verify_incoming and
    /// verify_outgoing): every step's nodes read what the previous step's nodes send, and back.
    @Test func aPlaintextSwarmMovesToEncryptionInThreeSteps() throws {
        let keyring = try Keyring(keys: [Self.key16])
        func packets(incoming: Bool, outgoing: Bool) -> PacketCodec {
            var codec = PacketCodec(label: "red", keyring: keyring)
            codec.verifyIncoming = incoming
            codec.verifyOutgoing = outgoing
            return codec
        }
        func streams(incoming: Bool, outgoing: Bool) -> StreamCodec {
            var codec = StreamCodec(label: "red", keyring: keyring)
            codec.verifyIncoming = incoming
            codec.verifyOutgoing = outgoing
            return codec
        }
        let plaintext = (packets: PacketCodec(label: "red"), streams: StreamCodec(label: "red"))
        let first = (packets: packets(incoming: false, outgoing: false), streams: streams(incoming: false, outgoing: false))
        let second = (packets: packets(incoming: false, outgoing: true), streams: streams(incoming: false, outgoing: true))
        let last = (packets: PacketCodec(label: "red", keyring: keyring), streams: StreamCodec(label: "red", keyring: keyring))
        let steps = [plaintext, first, second, last]
        for (older, newer) in zip(steps, steps.dropFirst()) {
            for (sender, receiver) in [(older, newer), (newer, older)] {
                #expect(try receiver.packets.decode(sender.packets.encode([Self.message])).messages == [Self.message])
                #expect(try receiver.streams.decode(sender.streams.encode(.user([1, 2, 3])))?.message == .user([1, 2, 3]))
            }
        }
        #expect(first.packets.encode([Self.message]) == plaintext.packets.encode([Self.message]), "the first step still sends plaintext")
        #expect(second.streams.encode(.user([1]))[5] == MessageType.encrypt.rawValue, "the second step sends encrypted")
        // Accepting plaintext never means accepting another swarm's key.
        let stranger = PacketCodec(label: "red", keyring: try Keyring(keys: [Self.key32]))
        #expect(throws: WireError(.decryptionFailed, "no installed key decrypts the message")) {
            try second.packets.decode(stranger.encode([Self.message]))
        }
        // Skipping the middle step splits the swarm: plaintext and strict nodes cannot talk.
        #expect(throws: WireError.self) { try last.packets.decode(plaintext.packets.encode([Self.message])) }
        #expect(throws: WireError.self) { try last.streams.decode(plaintext.streams.encode(.user([1]))) }
    }

    @Test func encryptedTrafficWithoutAKeyringIsNamedAsSuch() throws {
        let sender = StreamCodec(keyring: try Keyring(keys: [Self.key16]))
        #expect(throws: WireError(.encrypted, "an encrypted stream; this node has no keyring")) {
            try StreamCodec().decode(sender.encode(.user([1, 2, 3])))
        }
        let packet = PacketCodec(keyring: try Keyring(keys: [Self.key16])).encode([Self.message])
        #expect(throws: WireError.self) { try PacketCodec().decode(packet) }
    }

    @Test func theLabelIsAuthenticated() throws {
        let keyring = try Keyring(keys: [Self.key16])
        var packet = PacketCodec(label: "red", keyring: keyring).encode([Self.message])
        // Rewrite the label to another of the same length: the tag no longer matches.
        packet[2] = UInt8(ascii: "b"); packet[3] = UInt8(ascii: "e"); packet[4] = UInt8(ascii: "d")
        #expect(throws: WireError(.decryptionFailed, "no installed key decrypts the message")) {
            try PacketCodec(label: "bed", keyring: keyring).decode(packet)
        }
    }

    @Test func tamperedCiphertextIsRejected() throws {
        let codec = PacketCodec(keyring: try Keyring(keys: [Self.key16]))
        var packet = codec.encode([Self.message])
        packet[20] ^= 0x40
        #expect(throws: WireError(.decryptionFailed, "no installed key decrypts the message")) { try codec.decode(packet) }
    }

    @Test func version0PaddedMessagesDecrypt() throws {
        let keyring = try Keyring(keys: [Self.key16])
        for length in [0, 1, 15, 16, 17, 100] {
            let plain = [UInt8](repeating: 9, count: length)
            let sealed = GossipCipher.sealVersion0(plain, key: Self.key16, authenticated: [])
            #expect(sealed.first == 0)
            #expect(try GossipCipher.open(sealed[...], keyring: keyring, authenticated: []) == plain)
        }
    }

    @Test func shortOrUnknownVersionMessagesAreRejectedBeforeDecrypting() throws {
        let keyring = try Keyring(keys: [Self.key16])
        #expect(throws: WireError.self) { try GossipCipher.open([1, 2, 3][...], keyring: keyring, authenticated: []) }
        #expect(throws: WireError.self) { try GossipCipher.open([UInt8](repeating: 7, count: 64)[...], keyring: keyring, authenticated: []) }
        #expect(throws: WireError.self) { try GossipCipher.open([][...], keyring: keyring, authenticated: []) }
    }

    @Test(arguments: [false, true])
    func streamsRoundTripEncrypted(compression: Bool) throws {
        let codec = StreamCodec(label: "red", keyring: try Keyring(keys: [Self.key32]), compression: compression)
        let pushPull = PushPull(
            join: true,
            nodes: [
                PushNodeState(
                    name: "a", address: NodeAddress(ip: [10, 0, 0, 1], port: 7946), meta: [1], incarnation: 3, state: .alive,
                    versions: .rumor)
            ], userState: [5, 6, 7])
        let bytes = codec.encode(.pushPull(pushPull))
        #expect(bytes[2 + 3] == MessageType.encrypt.rawValue)
        let decoded = try #require(try codec.decode(bytes))
        #expect(decoded.message == .pushPull(pushPull))
        #expect(decoded.consumed == bytes.count)
        // Every prefix is "incomplete", never an error.
        for cut in [1, 5, 6, 9, bytes.count - 1] {
            #expect(try codec.decode(Array(bytes.prefix(cut))) == nil)
        }
    }

    /// Found by Fuzz/FuzzStream: an authentic but empty encrypted stream message indexed past
    /// the end of its plaintext.
    @Test func emptyEncryptedStreamMessageIsRejected() throws {
        let keyring = try Keyring(keys: [Self.key16])
        let length = UInt32(GossipCipher.overhead)
        let header: [UInt8] = [MessageType.encrypt.rawValue, 0, 0, 0, UInt8(length)]
        let bytes = header + GossipCipher.seal([], key: Self.key16, authenticated: header)
        #expect(throws: WireError(.malformed, "encrypted stream message is incomplete")) {
            try StreamCodec(keyring: keyring).decode(bytes)
        }
    }

    @Test func encryptedStreamLengthIsBoundedBeforeReading() throws {
        let codec = StreamCodec(keyring: try Keyring(keys: [Self.key16]), maximumMessageSize: 1 << 20)
        let header: [UInt8] = [MessageType.encrypt.rawValue, 0x7f, 0xff, 0xff, 0xff]
        #expect(throws: WireError.self) { try codec.decode(header) }
    }

    @Test func keyringRotationSteps() throws {
        var keyring = try Keyring(keys: [Self.key16])
        try keyring.install(Self.key32)
        #expect(keyring.primary == Self.key16)
        try keyring.install(Self.key32)
        #expect(keyring.keys.count == 2, "installing twice changes nothing")
        try keyring.use(Self.key32)
        #expect(keyring.keys == [Self.key32, Self.key16])
        #expect(throws: KeyringError.removingPrimary) { try keyring.remove(Self.key32) }
        try keyring.remove(Self.key16)
        #expect(keyring.keys == [Self.key32])
        #expect(throws: KeyringError.notInstalled) { try keyring.use(Self.key24) }
        #expect(throws: KeyringError.badKeySize(15)) { try keyring.install([UInt8](repeating: 0, count: 15)) }
    }

    @Test func keyringHoldsAtMostSixteenKeys() throws {
        var keyring = Keyring()
        for index in 0..<Keyring.maximumKeys { try keyring.install([UInt8](repeating: UInt8(index), count: 16)) }
        #expect(throws: KeyringError.full) { try keyring.install([UInt8](repeating: 99, count: 16)) }
    }

    @Test(arguments: [
        KeyringFrame.request(.list), .request(.install(key32)), .request(.use(key16)), .request(.remove(key24)),
        .response(keys: [key32, key16], error: nil), .response(keys: [], error: "the key is not installed"),
    ])
    func keyringFramesRoundTrip(frame: KeyringFrame) throws {
        let bytes = KeyringCodec.encode(frame)
        #expect(KeyringCodec.isFrame(bytes))
        #expect(!ReplicationCodec.isFrame(bytes))
        #expect(try KeyringCodec.decode(bytes) == frame)
        for cut in 0..<bytes.count {
            #expect(throws: WireError.self) { try KeyringCodec.decode(Array(bytes.prefix(cut))) }
        }
    }
}
