import RumorAgent
import RumorCore
import RumorWire
import Testing

/// The local API's request decoders: valid bodies become requests, anything else a `bad_request`,
/// `bad_key` or `too_large` error that names what to send instead.
struct APIRequestsTests {
    private func body(_ json: String) -> [UInt8] { Array(json.utf8) }

    /// The code of the `AgentError` that `decode` throws, nil when it throws nothing.
    private func errorCode(_ decode: () throws -> Void) -> ErrorCode? {
        do {
            try decode()
            return nil
        } catch let error as AgentError {
            #expect(!error.message.isEmpty && !error.hint.isEmpty)
            return error.code
        } catch {
            Issue.record("not an AgentError: \(error)")
            return .internal
        }
    }

    @Test func keyOperationsCarryTheDecodedKey() throws {
        let key = [UInt8](repeating: 7, count: 32)
        let text = KeyText.encode(key)
        #expect(try APIRequests.keyOperation(body(#"{"operation":"install","key":"\#(text)"}"#)) == .install(key))
        #expect(try APIRequests.keyOperation(body(#"{"operation":"use","key":" \#(text)\n"}"#)) == .use(key))
        #expect(try APIRequests.keyOperation(body(#"{"operation":"remove","key":"\#(text)"}"#)) == .remove(key))
    }

    @Test func badKeysAndOperationsAreRefused() {
        let sixteen = KeyText.encode([UInt8](repeating: 1, count: 16))
        #expect(errorCode { _ = try APIRequests.keyOperation(body(#"{"operation":"install","key":"not base64!"}"#)) } == .badKey)
        #expect(errorCode { _ = try APIRequests.keyOperation(body(#"{"operation":"install","key":"AAAA"}"#)) } == .badKey)
        #expect(errorCode { _ = try APIRequests.keyOperation(body(#"{"operation":"rotate","key":"\#(sixteen)"}"#)) } == .badRequest)
        #expect(errorCode { _ = try APIRequests.keyOperation(body(#"{"key":"\#(sixteen)"}"#)) } == .badRequest)
        #expect(errorCode { _ = try KeyText.decode(KeyText.encode([UInt8](repeating: 1, count: 24))) } == nil)
    }

    @Test func putBoundsItsTimes() throws {
        let put = try APIRequests.put(body(#"{"key":"k","value":"v","ttlSeconds":0.0001,"wait":3,"timeoutSeconds":2}"#))
        #expect(put.key == "k" && put.value == Array("v".utf8))
        #expect(put.timeToLive == .milliseconds(1), "a time to live rounds up to at least 1 ms")
        #expect(put.timeout == .seconds(2) && put.replicas != nil)
        #expect(errorCode { _ = try APIRequests.put(body(#"{"key":"k","value":"v","ttlSeconds":-1}"#)) } == .badRequest)
        #expect(errorCode { _ = try APIRequests.put(body(#"{"key":"k","value":"v","timeoutSeconds":7200}"#)) } == .badRequest)
        #expect(errorCode { _ = try APIRequests.put(body(#"{"key":"k","value":"v","wait":0}"#)) } == .badRequest)
    }

    @Test func malformedAndOversizedBodiesAreRefused() {
        #expect(errorCode { _ = try APIRequests.join(body(#"{"addresses":[]}"#)) } == .badRequest)
        #expect(errorCode { _ = try APIRequests.delete(body("{")) } == .badRequest)
        let huge = [UInt8](repeating: 0x20, count: APIRequests.maximumBodyBytes + 1)
        #expect(errorCode { _ = try APIRequests.batch(huge) } == .tooLarge)
    }

    // MARK: - What the CLI encodes, the server decodes

    @Test func aJoinRequestRoundTrips() throws {
        let sent = JoinRequest(addresses: ["127.0.0.1:7946", "[::1]:7000"])
        #expect(try APIRequests.join(APIRequests.encode(sent)) == sent.addresses)
    }

    @Test func aPutRequestRoundTrips() throws {
        let sent = PutRequest(
            key: "k", value: "v ✓", ttlSeconds: 30, ephemeral: true, wait: .init("all"), timeoutSeconds: 2.5)
        let put = try APIRequests.put(APIRequests.encode(sent))
        #expect(put.key == "k" && put.value == Array("v ✓".utf8) && put.ephemeral)
        #expect(put.timeToLive == .seconds(30) && put.replicas == .all && put.timeout == .milliseconds(2500))
        let bare = try APIRequests.put(APIRequests.encode(PutRequest(key: "k", value: "")))
        #expect(bare.timeToLive == nil && !bare.ephemeral && bare.replicas == nil && bare.timeout == .seconds(10))
        let counted = try APIRequests.put(APIRequests.encode(PutRequest(key: "k", value: "v", wait: .init("3"))))
        #expect(counted.replicas == .count(3))
    }

    @Test func aPutRequestsWaitIsAStringOnTheWireAndANumberIsAccepted() throws {
        let text = String(decoding: try APIRequests.encode(PutRequest(key: "k", value: "v", wait: .init("3"))), as: UTF8.self)
        #expect(text == #"{"key":"k","value":"v","wait":"3"}"#, "unset options are left out, as the CLI always did")
        #expect(try APIRequests.put(body(#"{"key":"k","value":"v","wait":3}"#)).replicas == .count(3))
    }

    @Test func aBatchRequestRoundTrips() throws {
        let sent = BatchRequest(entries: [.init(key: "a", value: "1"), .init(key: "b", value: nil)])
        let writes = try APIRequests.batch(APIRequests.encode(sent))
        #expect(writes.map(\.key) == ["a", "b"] && writes[0].value == Array("1".utf8) && writes[1].value == nil)
        #expect(try APIRequests.batch(body(#"{"entries":[{"key":"b","value":null}]}"#))[0].value == nil)
    }

    @Test func aDeleteRequestRoundTrips() throws {
        #expect(try APIRequests.delete(APIRequests.encode(DeleteRequest(key: "gone"))).key == "gone")
        let waited = try APIRequests.delete(APIRequests.encode(DeleteRequest(key: "gone", wait: .init("all"), timeoutSeconds: 2)))
        #expect(waited.replicas == .all && waited.timeout == .seconds(2))
        #expect(errorCode { _ = try APIRequests.delete(body(#"{"key":"k","wait":"some"}"#)) } == .badRequest)
    }

    @Test func aKeyringRequestRoundTrips() throws {
        let key = [UInt8](repeating: 9, count: 16)
        for (operation, expected) in [("install", KeyringOperation.install(key)), ("use", .use(key)), ("remove", .remove(key))] {
            let sent = KeyringRequest(operation: operation, key: KeyText.encode(key))
            #expect(try APIRequests.keyOperation(APIRequests.encode(sent)) == expected)
        }
    }
}
