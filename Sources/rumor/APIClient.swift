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

    /// Performs a request (with `body` as JSON, see `APIRequests.encode`) and returns the raw
    /// `data` JSON and the full envelope text.
    func call(_ method: String, _ path: String, body: (any Encodable)? = nil) async throws -> (data: Any, envelope: String) {
        guard let url = URL(string: "http://\(address)\(path)") else {
            throw AgentError(code: .badArguments, message: "'\(address)' is not a valid API address", hint: "use --api HOST:PORT")
        }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data(try APIRequests.encode(body))
        }
        let bytes: Data
        do {
            (bytes, _) = try await URLSession.shared.data(for: request)
        } catch {
            throw AgentError(
                code: .agentUnreachable, message: "cannot reach the agent API at \(address): \(error.localizedDescription)",
                hint: "is `rumor agent` running? start one with `rumor agent --name n1`, or point --api (RUMOR_API) at it")
        }
        guard let object = try? JSONSerialization.jsonObject(with: bytes) as? [String: Any],
            let status = object["status"] as? String
        else {
            throw AgentError(
                code: .badResponse, message: "the agent at \(address) answered something that is not a Rumor envelope",
                hint: "is --api pointing at a Rumor agent's API port (not its gossip port)?")
        }
        guard status == "ok" else {
            throw AgentError(
                code: ErrorCode(answered: object["code"]), message: object["message"] as? String ?? "unknown error",
                hint: object["hint"] as? String ?? "")
        }
        return (object["data"] ?? NSNull(), String(decoding: bytes, as: UTF8.self))
    }

    /// Performs a request and decodes its `data` as `T`.
    func call<T: Decodable>(
        _ method: String, _ path: String, as type: T.Type, body: (any Encodable)? = nil
    ) async throws -> (value: T, envelope: String) {
        let (data, envelope) = try await call(method, path, body: body)
        let json = try JSONSerialization.data(withJSONObject: data, options: [.fragmentsAllowed])
        return (try JSONDecoder().decode(T.self, from: json), envelope)
    }
}

extension APIClient {
    /// Streams a long-lived response line by line (`watch`). An error answer (a JSON envelope
    /// with a non-2xx status) is thrown as its `AgentError`.
    func lines(_ path: String) throws -> AsyncThrowingStream<String, any Error> {
        guard let url = URL(string: "http://\(address)\(path)") else {
            throw AgentError(code: .badArguments, message: "'\(address)' is not a valid API address", hint: "use --api HOST:PORT")
        }
        // A watch may stay quiet for a long time: no idle timeout.
        var request = URLRequest(url: url, timeoutInterval: 365 * 24 * 3600)
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: String.self)
        let receiver = LineReceiver(address: address, continuation: continuation)
        let session = URLSession(configuration: .default, delegate: receiver, delegateQueue: nil)
        let task = session.dataTask(with: request)
        continuation.onTermination = { _ in
            task.cancel()
            session.invalidateAndCancel()
        }
        task.resume()
        return stream
    }
}

extension ErrorCode {
    /// The code an error envelope from the agent carries; `bad_response` when it carries none
    /// this CLI knows (an agent of another version, or not an agent at all).
    init(answered code: Any?) {
        self = (code as? String).flatMap(ErrorCode.init(rawValue:)) ?? .badResponse
    }
}

/// Splits a streamed response into lines as bytes arrive (URLSession calls it on its own queue,
/// one callback at a time).
private final class LineReceiver: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let address: String
    let continuation: AsyncThrowingStream<String, any Error>.Continuation
    private var pending = Data()
    private var status = 0

    init(address: String, continuation: AsyncThrowingStream<String, any Error>.Continuation) {
        self.address = address
        self.continuation = continuation
    }

    func urlSession(
        _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void
    ) {
        status = (response as? HTTPURLResponse)?.statusCode ?? 0
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        pending.append(data)
        guard status == 200 else { return }  // an error envelope: read it whole at the end
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
            pending.removeSubrange(pending.startIndex...newline)
            if !line.isEmpty { continuation.yield(line) }
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        if let error {
            continuation.finish(
                throwing: AgentError(
                    code: .agentUnreachable, message: "cannot reach the agent API at \(address): \(error.localizedDescription)",
                    hint: "is `rumor agent` running? start one with `rumor agent --name n1`, or point --api (RUMOR_API) at it"))
        } else if status != 200 {
            let object = (try? JSONSerialization.jsonObject(with: pending)) as? [String: Any]
            continuation.finish(
                throwing: AgentError(
                    code: ErrorCode(answered: object?["code"]),
                    message: object?["message"] as? String ?? "the agent answered HTTP \(status)",
                    hint: object?["hint"] as? String ?? "is --api pointing at a Rumor agent's API port?"))
        } else {
            continuation.finish()
        }
        session.finishTasksAndInvalidate()
    }
}
