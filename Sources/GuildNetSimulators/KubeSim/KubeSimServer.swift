import Foundation
import GuildNetCore
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL

/// The request context: Hummingbird's core storage plus the connection's channel (for the peer
/// certificate and for cutting connections).
struct KubeSimContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Open connections, so faults and `stop()` can drop them.
final class ConnectionRegistry: Sendable {
    private let channels = LockedValue<[ObjectIdentifier: any Channel]>([:])

    func register(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let isNew = channels.withLock { table -> Bool in
            if table[id] != nil { return false }
            table[id] = channel
            return true
        }
        if isNew {
            channel.closeFuture.whenComplete { [channels] _ in
                _ = channels.withLock { $0.removeValue(forKey: id) }
            }
        }
    }

    var count: Int { channels.withLock { $0.count } }

    func closeAll() {
        let all = channels.withLock { Array($0.values) }
        for channel in all { channel.close(promise: nil) }
    }
}

/// Everything the HTTP layer shares: state, faults, auth settings, connections.
struct KubeSimShared: Sendable {
    let store: KubeStore
    let faults: KubeFaults
    let connections: ConnectionRegistry
    let dripDelay: LockedValue<Duration>
    let options: KubeSimOptions
    /// Port-forward tunnels and their faults.
    let tunnels: TunnelControl
    /// The loopback servers behind simulated pods.
    let backends: PodBackends
}

/// The HTTP responder: auth, faults, then the Kubernetes API routes.
struct KubeSimResponder: HTTPResponder {
    typealias Context = KubeSimContext
    let shared: KubeSimShared

    func respond(to request: Request, context: KubeSimContext) async throws -> Response {
        shared.connections.register(context.channel)
        if let failure = await shared.faults.admit() {
            let reason = failure.code == 429 ? "TooManyRequests" : (failure.code == 503 ? "ServiceUnavailable" : "InternalError")
            let error = KubeStatusError(
                code: failure.code, reason: reason, message: "injected failure (\(failure.code))",
                retryAfterSeconds: failure.retryAfterSeconds)
            var response = Self.statusResponse(error)
            if let seconds = failure.retryAfterSeconds {
                response.headers[.retryAfter] = String(seconds)
            }
            return response
        }
        do {
            try await authenticate(request, context: context)
            return try await route(request, context: context)
        } catch let error as KubeStatusError {
            return Self.statusResponse(error)
        }
    }

    // MARK: - Auth

    private func authenticate(_ request: Request, context: KubeSimContext) async throws {
        if shared.options.requireForwardedFor, !request.headers.contains(where: { $0.name.canonicalName == "x-forwarded-for" }) {
            throw KubeStatusError(
                code: 403, reason: "Forbidden", message: "forbidden: this server accepts only requests relayed by a proxy (X-Forwarded-For)")
        }
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                let token = String(parts[1]).trimmingCharacters(in: .whitespaces)
                if let forbidden = shared.options.forbiddenToken, token == forbidden {
                    throw KubeStatusError(
                        code: 403, reason: "Forbidden",
                        message: "forbidden: User \"kubesim-forbidden\" cannot \(request.method.rawValue.lowercased()) resource at \"\(request.uri.path)\"")
                }
                if token == shared.options.token { return }
                throw Self.unauthorized
            }
        }
        // The TLS layer already verified a presented certificate against the sim CA.
        if (try? await context.channel.nioSSL_peerCertificate().get()) != nil {
            return
        }
        throw Self.unauthorized
    }

    static let unauthorized = KubeStatusError(code: 401, reason: "Unauthorized", message: "Unauthorized")

    // MARK: - Responses

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: value.serialized)))
    }

    /// A discovery document in the aggregated media type.
    static func aggregated(_ value: JSONValue) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = KubeSimDiscovery.aggregatedContentType
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: value.serialized)))
    }

    static func statusResponse(_ error: KubeStatusError) -> Response {
        json(error.status, status: HTTPResponse.Status(code: error.code))
    }

    // MARK: - Routing

    private func route(_ request: Request, context: KubeSimContext) async throws -> Response {
        let path = request.uri.path
        let segments = path.split(separator: "/").map(String.init)
        let method = request.method
        let query = request.uri.queryParameters
        let aggregated = KubeSimDiscovery.wantsAggregated(request.headers[.accept])

        switch segments.first {
        case "version" where segments.count == 1:
            return Self.json(KubeSimDiscovery.version)
        case "healthz", "readyz", "livez":
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; charset=utf-8"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: "ok")))
        case "apis":
            if segments.count == 1 {
                return aggregated ? Self.aggregated(KubeSimDiscovery.aggregatedGroups) : Self.json(KubeSimDiscovery.apiGroupList)
            }
            throw KubeStatusError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
        case "openapi":
            if segments == ["openapi", "v3"] { return Self.json(KubeSimDiscovery.openAPIIndex) }
            if segments == ["openapi", "v3", "api", "v1"] { return Self.json(KubeSimDiscovery.openAPICoreV1) }
            throw KubeStatusError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
        case "api":
            break
        default:
            throw KubeStatusError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
        }
        if segments.count == 1 {
            return aggregated ? Self.aggregated(KubeSimDiscovery.aggregatedCore) : Self.json(KubeSimDiscovery.apiVersions)
        }
        guard segments[1] == "v1" else {
            throw KubeStatusError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
        }
        if segments.count == 2 { return Self.json(KubeSimDiscovery.coreResourceList) }
        if let target = PortForwardAdmission.target(path: path) {
            throw await portForwardRefusal(namespace: target.namespace, pod: target.pod, request: request)
        }

        // /api/v1/<res>[/<name>] or /api/v1/namespaces/<ns>/<res>[/<name>]
        let rest = Array(segments.dropFirst(2))
        var resource: KubeResource
        var namespace: String?
        var name: String?
        if rest.count >= 3, rest[0] == "namespaces", let res = KubeResource(rawValue: rest[2]), res.namespaced {
            resource = res
            namespace = rest[1]
            guard rest.count <= 4 else { throw KubeStatusError(code: 404, reason: "NotFound", message: "the server could not find the requested resource") }
            name = rest.count == 4 ? rest[3] : nil
        } else if let res = KubeResource(rawValue: rest[0]), rest.count <= 2 {
            resource = res
            name = rest.count == 2 ? rest[1] : nil
            if res.namespaced && name != nil {
                throw KubeStatusError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
            }
        } else {
            throw KubeStatusError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
        }
        let ns = namespace ?? ""

        switch (method, name) {
        case (.get, nil):
            let labels = try KubeSelector(query.get("labelSelector"), isField: false)
            let fields = try KubeSelector(query.get("fieldSelector"), isField: true)
            let watch = query.get("watch")
            if watch == "true" || watch == "1" {
                return try await self.watch(resource, namespace: namespace, labels: labels, fields: fields, request: request, context: context)
            }
            let limit = query.get("limit").flatMap { Int($0) }
            let list = try await shared.store.list(
                resource, namespace: namespace, limit: limit, continueToken: query.get("continue"), labels: labels, fields: fields,
                resourceVersion: query.get("resourceVersion"), match: query.get("resourceVersionMatch"))
            return Self.json(list)
        case (.get, let name?):
            return Self.json(try await shared.store.get(resource, namespace: ns, name: name))
        case (.post, nil):
            let body = try await Self.body(request)
            return Self.json(try await shared.store.create(resource, namespace: ns, object: body), status: .created)
        case (.put, let name?):
            let body = try await Self.body(request)
            return Self.json(try await shared.store.update(resource, namespace: ns, name: name, object: body))
        case (.patch, let name?):
            let contentType = (request.headers[.contentType] ?? "").split(separator: ";").first.map {
                $0.trimmingCharacters(in: .whitespaces).lowercased()
            }
            guard contentType == "application/merge-patch+json" || contentType == "application/strategic-merge-patch+json" else {
                throw KubeStatusError(
                    code: 415, reason: "UnsupportedMediaType",
                    message:
                        "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json"
                )
            }
            let body = try await Self.body(request)
            let strategic = contentType == "application/strategic-merge-patch+json"
            return Self.json(try await shared.store.patch(resource, namespace: ns, name: name, patch: body, strategic: strategic))
        case (.delete, let name?):
            return Self.json(try await shared.store.delete(resource, namespace: ns, name: name))
        default:
            throw KubeStatusError(code: 405, reason: "MethodNotAllowed", message: "the server does not allow this method on the requested resource")
        }
    }

    /// Why a request to `pods/{name}/portforward` reached the responder instead of being upgraded
    /// (an admitted upgrade never gets here): the Status the API server would answer.
    private func portForwardRefusal(namespace: String, pod: String, request: Request) async -> KubeStatusError {
        let object: JSONValue
        do {
            object = try await shared.store.get(.pods, namespace: namespace, name: pod)
        } catch let error as KubeStatusError {
            return error
        } catch {
            return KubeStatusError(code: 500, reason: "InternalError", message: "\(error)")
        }
        guard request.method == .get || request.method == .post else {
            return KubeStatusError(code: 405, reason: "MethodNotAllowed", message: "the server does not allow this method on the requested resource")
        }
        if shared.tunnels.refusesUpgrades {
            return KubeStatusError(
                code: 500, reason: "InternalError", message: "unable to upgrade connection: port-forward upgrades are refused (injected fault)")
        }
        let phase = object["status"]?["phase"]?.stringValue ?? ""
        if phase != "Running" {
            return KubeStatusError.badRequest("unable to upgrade connection: pod \(pod) is not running (phase \(phase))")
        }
        let upgrade = request.headers[.upgrade]?.lowercased() ?? ""
        if upgrade == "websocket" {
            let offered = request.headers[values: .secWebSocketProtocol].joined(separator: ",")
            if PortForwardAdmission.subprotocol([offered]) == nil {
                return KubeStatusError.badRequest("unable to upgrade connection: none of the offered subprotocols is supported: \(offered)")
            }
            return KubeStatusError.badRequest("query parameter \"ports\" is required: a list of ports 1-65535")
        }
        if upgrade.hasPrefix("spdy/") {
            return KubeStatusError.badRequest("unable to upgrade connection: X-Stream-Protocol-Version must be portforward.k8s.io")
        }
        return KubeStatusError.badRequest("Upgrade request required")
    }

    private static func body(_ request: Request) async throws -> JSONValue {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: 16 << 20)
        } catch {
            throw KubeStatusError(code: 413, reason: "RequestEntityTooLarge", message: "request entity too large")
        }
        do {
            return try JSONParser.parse(Array(buffer.readableBytesView))
        } catch {
            throw KubeStatusError.badRequest("invalid JSON body: \(error)")
        }
    }

    // MARK: - Watch

    private func watch(
        _ resource: KubeResource, namespace: String?, labels: KubeSelector, fields: KubeSelector,
        request: Request, context: KubeSimContext
    ) async throws -> Response {
        let query = request.uri.queryParameters
        let sendInitial = query.get("sendInitialEvents") == "true"
        let allowBookmarks = query.get("allowWatchBookmarks") == "true" || query.get("allowWatchBookmarks") == "1"
        let timeout: Duration =
            query.get("timeoutSeconds").flatMap { Int($0) }.map { .seconds(max(0, $0)) }
            ?? shared.options.defaultWatchTimeout
        let filter = WatchFilter(resource: resource, namespace: namespace, labels: labels, fields: fields)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        let store = shared.store
        let subscription: (id: Int, backlog: [WatchItem], stream: AsyncStream<WatchItem>)
        do {
            subscription = try await store.subscribe(
                filter: filter, resourceVersion: query.get("resourceVersion"), sendInitialEvents: sendInitial)
        } catch let error as KubeStatusError where error.code == 410 {
            // The API server answers 200 with one ERROR event, then closes.
            let line = JSONValue.object(["type": "ERROR", "object": error.status]).serialized + [UInt8(ascii: "\n")]
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: line)))
        }
        let shared = self.shared
        let channel = context.channel
        let bookmarkInterval = shared.options.bookmarkInterval
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                let id = subscription.id
                var cut = false
                do {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            try await Task.sleep(for: timeout)
                            await store.finish(id, with: .end)
                        }
                        // The client went away: end the watch so nothing lingers. (An AsyncStream,
                        // unlike EventLoopFuture.get(), ends when the group is cancelled.)
                        let (closed, closedContinuation) = AsyncStream<Void>.makeStream()
                        channel.closeFuture.whenComplete { _ in closedContinuation.finish() }
                        group.addTask {
                            for await _ in closed {}
                            if !Task.isCancelled { await store.finish(id, with: .end) }
                        }
                        if allowBookmarks {
                            group.addTask {
                                while true {
                                    try await Task.sleep(for: bookmarkInterval)
                                    await store.bookmark(id)
                                }
                            }
                        }
                        func write(_ type: String, _ object: JSONValue) async throws {
                            let drip = shared.dripDelay.withLock { $0 }
                            if drip > .zero { try await Task.sleep(for: drip) }
                            var line = JSONValue.object(["type": .string(type), "object": object]).serialized
                            line.append(UInt8(ascii: "\n"))
                            try await writer.write(ByteBuffer(bytes: line))
                        }
                        for item in subscription.backlog {
                            if case .event(let type, let object) = item { try await write(type, object) }
                        }
                        loop: for await item in subscription.stream {
                            switch item {
                            case .event(let type, let object):
                                if type == "BOOKMARK" && !allowBookmarks { continue }
                                try await write(type, object)
                            case .end:
                                break loop
                            case .cut:
                                cut = true
                                break loop
                            }
                        }
                        group.cancelAll()
                    }
                } catch {
                    await store.unsubscribe(id)
                    throw error
                }
                await store.unsubscribe(id)
                if cut {
                    channel.close(promise: nil)
                    throw KubeSimWatchCut()
                }
                try await writer.finish(nil)
            })
    }
}

struct KubeSimWatchCut: Error {}
