import Foundation
import RumorAgent

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Talks to a local agent's HTTP API and unwraps its envelope.
struct APIClient {
    var address: String
    var token: String?
    var timeout: TimeInterval = 10

    /// Performs a request and returns the raw `data` JSON and the full envelope text.
    func call(_ method: String, _ path: String, body: [String: Any]? = nil) async throws -> (data: Any, envelope: String) {
        guard let url = URL(string: "http://\(address)\(path)") else {
            throw AgentError(code: "bad_arguments", message: "'\(address)' is not a valid API address", hint: "use --api HOST:PORT")
        }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
        }
        let bytes: Data
        do {
            (bytes, _) = try await URLSession.shared.data(for: request)
        } catch {
            throw AgentError(
                code: "agent_unreachable", message: "cannot reach the agent API at \(address): \(error.localizedDescription)",
                hint: "is `rumor agent` running? start one with `rumor agent --name n1`, or point --api (RUMOR_API) at it")
        }
        guard let object = try? JSONSerialization.jsonObject(with: bytes) as? [String: Any],
            let status = object["status"] as? String
        else {
            throw AgentError(
                code: "bad_response", message: "the agent at \(address) answered something that is not a Rumor envelope",
                hint: "is --api pointing at a Rumor agent's API port (not its gossip port)?")
        }
        guard status == "ok" else {
            throw AgentError(
                code: object["code"] as? String ?? "error", message: object["message"] as? String ?? "unknown error",
                hint: object["hint"] as? String ?? "")
        }
        return (object["data"] ?? NSNull(), String(decoding: bytes, as: UTF8.self))
    }

    /// Performs a request and decodes its `data` as `T`.
    func call<T: Decodable>(_ method: String, _ path: String, as type: T.Type, body: [String: Any]? = nil) async throws -> (value: T, envelope: String) {
        let (data, envelope) = try await call(method, path, body: body)
        let json = try JSONSerialization.data(withJSONObject: data, options: [.fragmentsAllowed])
        return (try JSONDecoder().decode(T.self, from: json), envelope)
    }
}
