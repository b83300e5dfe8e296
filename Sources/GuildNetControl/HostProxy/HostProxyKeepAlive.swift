import AsyncHTTPClient
import GuildNetCore
import GuildNetKube
import NIOCore
import NIOHTTP1

extension HostProxyServer {
    /// Serves a keep-alive connection: each request is read whole (its body up to
    /// ``maxRequestBodyBytes``), checked, relayed with
    /// ``KubeClient/relay(method:target:headers:body:delegate:on:)`` over the cluster's pooled
    /// connections, and its reply streamed back as it arrives by ``HostProxyRelayDelegate`` (a
    /// watch stays open until either side ends it). Requests on one connection are answered in
    /// order; the connection closing cancels the request in flight.
    func serveKeepAlive(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        let inFlight = InFlightRelay()
        connection.channel.closeFuture.whenComplete { _ in inFlight.connectionClosed() }
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
                        reply = try await relay(request, method: head.method, body: body, on: connection.channel, inFlight: inFlight)
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
    /// reach the cluster (or no reply head came within the cluster's request timeout).
    private func relay(
        _ request: ProxyRequestHead, method: HTTPMethod, body: ByteBuffer?, on channel: any Channel, inFlight: InFlightRelay
    ) async throws -> HostProxyStatus? {
        let client: KubeClient
        let rest: String
        switch await route(request) {
        case .refused(let status): return status
        case .cluster(let found, let path): (client, rest) = (found, path)
        }
        let delegate = HostProxyRelayDelegate(channel: channel)
        let task: HTTPClient.Task<Void>
        do {
            task = try await client.relay(method: method, target: rest, headers: request.relayedHeaders, body: body, delegate: delegate, on: channel.eventLoop)
        } catch {
            if Task.isCancelled { throw CancellationError() }
            return HostProxyStatus(502, HostError.wrapping(error, as: .k8sTransport).message)
        }
        guard inFlight.start(task) else {
            task.cancel()
            throw CancellationError()
        }
        defer { inFlight.finish() }
        let timeout = client.options.requestTimeout
        let headTimer = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout.seconds * 1e9))) {
            if !delegate.replyStarted { task.cancel() }
        }
        defer { headTimer.cancel() }
        do {
            try await withTaskCancellationHandler {
                try await task.futureResult.get()
            } onCancel: {
                task.cancel()
            }
        } catch {
            // Once the reply head went out, the client can only learn of the failure by the close.
            if delegate.replyStarted || Task.isCancelled { throw error }
            let cancelled = (error as? HTTPClientError) == .cancelled
            if cancelled { return HostProxyStatus(504, "no reply from the API server within \(timeout)") }
            return HostProxyStatus(502, HostError.wrapping(error, as: .k8sTransport).message)
        }
        return nil
    }
}

/// The relayed request a keep-alive connection is waiting on, cancelled when the client's
/// connection closes (a quiet watch would otherwise hold its upstream request for ever).
final class InFlightRelay: Sendable {
    private struct State {
        var closed = false
        var task: HTTPClient.Task<Void>?
    }

    private let state = LockedValue(State())

    /// Records `task`; `false` when the connection already closed.
    func start(_ task: HTTPClient.Task<Void>) -> Bool {
        state.withLock { state in
            guard !state.closed else { return false }
            state.task = task
            return true
        }
    }

    func finish() { state.withLock { $0.task = nil } }

    func connectionClosed() {
        let task = state.withLock { state -> HTTPClient.Task<Void>? in
            state.closed = true
            defer { state.task = nil }
            return state.task
        }
        task?.cancel()
    }
}
