import AsyncHTTPClient
import GuildNetCore
import GuildNetKube
import NIOCore
import NIOHTTP1

extension HostProxyServer {
    /// Serves a keep-alive connection: each request is read whole (its body up to
    /// ``maxRequestBodyBytes``), checked, relayed with ``KubeClient/relay(method:target:headers:body:)``
    /// over the cluster's pooled connections, and its reply streamed back as it arrives (a watch
    /// stays open until either side ends it). Requests on one connection are answered in order.
    func serveKeepAlive(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        let closed = ConnectionClosedSignal()
        connection.channel.closeFuture.whenComplete { _ in closed.close() }
        do {
            try await connection.executeThenClose { inbound, outbound in
                var parts = inbound.makeAsyncIterator()
                while let part = try await parts.next() {
                    guard case .head(let head) = part else { continue }
                    var body: ByteBuffer?
                    var tooLarge = false
                    reading: while let next = try await parts.next() {
                        switch next {
                        case .head: throw HostError(.invalidRequest, "a request head arrived inside a request body")
                        case .body(var chunk):
                            if (body?.readableBytes ?? 0) + chunk.readableBytes > Self.maxRequestBodyBytes { tooLarge = true }
                            if !tooLarge { body.setOrWriteBuffer(&chunk) }
                        case .end: break reading
                        }
                    }
                    let request = ProxyRequestHead(head)
                    let reply: HostProxyStatus?
                    if tooLarge {
                        reply = HostProxyStatus(413, "request bodies through the host proxy are limited to \(Self.maxRequestBodyBytes) bytes")
                    } else if request.isUpgrade {
                        reply = HostProxyStatus(400, "an upgrade request must be the first request of its connection")
                    } else {
                        reply = try await relay(request, method: head.method, body: body, to: outbound, until: closed)
                    }
                    if let reply {
                        for part in reply.parts { try await outbound.write(part) }
                    }
                    guard head.isKeepAlive, reply.map({ $0.code < 500 && $0.code != 413 && $0.code != 400 }) ?? true else { return }
                }
            }
        } catch {
            if !Task.isCancelled { logger.debug("host proxy connection ended: \(error)") }
        }
    }

    /// Relays one request and streams its reply; returns the proxy's own reply when it did not
    /// reach the cluster. Stops streaming (cancelling the upstream request) when the client's
    /// connection closes, even while the reply is quiet (a watch without events).
    private func relay(
        _ request: ProxyRequestHead, method: HTTPMethod, body: ByteBuffer?, to outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>,
        until closed: ConnectionClosedSignal
    ) async throws -> HostProxyStatus? {
        let client: KubeClient
        let rest: String
        switch await route(request) {
        case .refused(let status): return status
        case .cluster(let found, let path): (client, rest) = (found, path)
        }
        let response: HTTPClientResponse
        do {
            response = try await client.relay(method: method, target: rest, headers: request.relayedHeaders, body: body)
        } catch {
            if Task.isCancelled { throw CancellationError() }
            return HostProxyStatus(502, HostError.wrapping(error, as: .k8sTransport).message)
        }
        // NIO's encoder frames the reply: the server's Content-Length is kept, chunking is redone.
        var headers = HTTPHeaders()
        for (name, value) in response.headers {
            let lower = name.lowercased()
            if lower == "content-length" || !ProxyRequestHead.notRelayed.contains(lower) { headers.add(name: name, value: value) }
        }
        try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers)))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await chunk in response.body { try await outbound.write(.body(.byteBuffer(chunk))) }
                try await outbound.write(.end(nil))
            }
            group.addTask {
                // The client left: stop streaming (and cancel the upstream request).
                if await closed.wait() { throw CancellationError() }
            }
            try await group.next()
            group.cancelAll()
        }
        return nil
    }
}

/// "The client's connection closed", awaited by one exchange at a time: ``wait()`` returns `true`
/// once the connection closed, `false` when the waiting task is cancelled first (the exchange
/// ended), so the next exchange can wait again.
final class ConnectionClosedSignal: Sendable {
    private struct State {
        var closed = false
        var waiter: CheckedContinuation<Bool, Never>?
    }

    private let state = LockedValue(State())

    func close() {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            state.closed = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: true)
    }

    func wait() async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let now = state.withLock { state -> Bool? in
                    if state.closed { return true }
                    // Checked under the lock: a cancellation handler that ran before the waiter was
                    // stored found nothing to resume, so it is seen here.
                    if Task.isCancelled { return false }
                    state.waiter = continuation
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: false)
        }
    }
}
