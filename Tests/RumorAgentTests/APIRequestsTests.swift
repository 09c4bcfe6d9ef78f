import RumorAgent
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
}
