import RumorCore
@testable import RumorAgent
import Foundation
import Testing

/// The API's contract as data: every error code with its HTTP status, and every route.
struct APIContractTests {
    @Test func everyErrorCodeIsTheSnakeCaseOfItsName() {
        for code in ErrorCode.allCases {
            let snakeCase = "\(code)".replacing(/[A-Z]/) { "_" + $0.output.lowercased() }
            #expect(code.rawValue == snakeCase)
        }
    }

    /// The statuses the API answered with before the codes were typed; changing one breaks clients.
    @Test func errorCodesKeepTheirHTTPStatus() {
        let statuses: [String: Int] = [
            "bad_request": 400, "bad_address": 400, "bad_key": 400, "empty_key": 400, "key_too_long": 400,
            "value_too_large": 400, "tags_too_large": 400, "event_too_large": 400, "unauthorized": 401, "not_found": 404, "key_not_found": 404, "left": 409,
            "watch_ahead": 409, "encryption_disabled": 409, "encryption_migrating": 409, "watch_compacted": 410, "watch_epoch_changed": 410,
            "too_large": 413,
            "join_failed": 502, "keyring_partial": 502, "replication_timeout": 504, "storage_full": 507,
            "peer_unknown": 404, "trust_refused": 502, "pilot_unavailable": 503, "query_too_large": 400, "unknown_node": 404, "needs_serf": 409, "no_coordinate": 404,
            "not_ready": 503, "clock_skew": 503, "replication_refused": 502,
            "forbidden": 403, "unsupported_media_type": 415, "too_many_connections": 503, "too_many_streams": 503,
        ]
        for code in ErrorCode.allCases {
            #expect(code.httpStatus == statuses[code.rawValue] ?? 500, "\(code.rawValue)")
        }
    }

    @Test func nodeErrorsKeepTheirCode() {
        for code in [
            NodeError.Code.emptyKey, .keyTooLong, .valueTooLarge, .left, .joinFailed, .replicationTimeout, .keyringPartial,
            .watchCompacted, .watchAhead, .tagsTooLarge, .eventTooLarge, .unknownNode, .needsSerf, .replicationRefused, .clockSkew,
        ] {
            #expect(ErrorCode(code).rawValue == code.rawValue)
        }
    }

    @Test func routesAreUniqueAndSummarized() {
        let names = APIRoute.all.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(APIRoute.all.allSatisfy { ($0.path.hasPrefix("/v1/") || $0.path == "/metrics" || $0.path == "/") && !$0.summary.isEmpty && !$0.summary.contains("\n") })
        #expect(names.count == 24)
        let operations = APIRoute.all.map(\.contract.operationID)
        #expect(Set(operations).count == operations.count)
        // Only the status page, which holds no data, is served without the token.
        #expect(APIRoute.withoutToken == ["GET /"])
    }

    @Test func theNotFoundHintListsEveryRouteAsBefore() {
        #expect(
            APIRoute.notFoundHint
                == "routes: GET /v1/health, /v1/members, /v1/coordinate, /v1/rtt, /v1/events, /v1/monitor, /v1/info, /v1/kv/get, /v1/kv/list, /v1/kv/status, /v1/kv/watch, /v1/keys, /metrics, /, /v1/openapi.json; POST /v1/event, /v1/query, /v1/tags, /v1/join, /v1/leave, /v1/kv/put, /v1/kv/batch, /v1/kv/delete, /v1/keys"
        )
    }

    @Test func theOpenAPIDocumentHasEveryRouteAndEveryReferenceResolves() throws {
        let document = try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json)) as? [String: Any])
        #expect(document["openapi"] as? String == "3.1.0")
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        for route in APIRoute.all {
            #expect(paths[route.path]?[route.method.rawValue.lowercased()] != nil, "\(route.name) is not documented")
        }
        #expect(paths.values.map(\.count).reduce(0, +) == APIRoute.all.count)
        let schemas = try #require((document["components"] as? [String: Any])?["schemas"] as? [String: Any])
        var references: [String] = []
        func collect(_ value: Any) {
            if let object = value as? [String: Any] {
                if let reference = object["$ref"] as? String { references.append(reference) }
                object.values.forEach(collect)
            } else if let array = value as? [Any] {
                array.forEach(collect)
            }
        }
        collect(document)
        #expect(!references.isEmpty)
        for reference in references {
            let name = String(reference.dropFirst("#/components/schemas/".count))
            #expect(reference.hasPrefix("#/components/schemas/") && schemas[name] != nil, "\(reference) does not resolve")
        }
    }
}
