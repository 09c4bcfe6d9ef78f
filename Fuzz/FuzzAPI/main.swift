// libFuzzer target: the local API's JSON request bodies. The first byte picks the endpoint;
// every input must give a validated request or an AgentError, never a crash.
import RumorAPI

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAPI(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let body = Array(bytes.dropFirst())
    switch bytes[0] % 8 {
    case 0:
        if let put = try? APIRequests.put(body) {
            precondition(put.timeout > .zero && (put.timeToLive ?? .seconds(1)) > .zero, "unvalidated put accepted")
        }
    case 1: _ = try? APIRequests.batch(body)
    case 2: _ = try? APIRequests.delete(body)
    case 3: _ = try? APIRequests.join(body)
    case 4: _ = try? APIRequests.keyOperation(body)
    case 5:
        if let query = try? APIRequests.query(body) {
            precondition(!query.name.isEmpty && !query.name.hasPrefix("_serf_") && query.relayFactor <= 5, "unvalidated query accepted")
        }
    case 6: _ = try? APIRequests.event(body)
    default: _ = try? APIRequests.tags(body)
    }
    return 0
}
