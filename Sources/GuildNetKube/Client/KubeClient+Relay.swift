import AsyncHTTPClient
import GuildNetCore
import NIOCore
import NIOHTTP1

extension KubeClient {
    /// Relays one request for the host proxy over a pooled keep-alive connection of the cluster's
    /// route, with the cluster's credentials. The reply goes to `delegate` on `eventLoop` as it
    /// arrives (the pool prefers a connection on that loop, so a relay that writes to a channel of
    /// the same loop never changes threads).
    ///
    /// - Parameters:
    ///   - target: the path and query after the server URL (`/api/v1/pods?watch=1`).
    ///   - headers: the caller's end-to-end headers; its `Authorization` and `Host` are replaced.
    /// - Returns: the running request (cancel it to stop it; its `futureResult` ends with it).
    /// - Throws: `k8s_unavailable` after ``shutdown()``, `k8s_invalid` for a target that makes no URL.
    ///   Not rate limited, like tunnels: the caller (kubectl) limits itself. No deadline: a watch
    ///   lasts as long as its client wants; the caller bounds the wait for the reply head.
    public func relay<Delegate: HTTPClientResponseDelegate>(
        method: HTTPMethod, target: String, headers: HTTPHeaders, body: ByteBuffer?, delegate: Delegate, on eventLoop: any EventLoop
    ) async throws -> HTTPClient.Task<Delegate.Response> {
        if isShutDown.withLock({ $0 }) {
            throw HostError(.k8sUnavailable, "the Kubernetes client of \(server) was shut down")
        }
        let credential = try await authenticator.current()
        var relayed = headers
        relayed.remove(name: "Authorization")
        relayed.remove(name: "Host")
        if let authorization = credential.authorization { relayed.add(name: "Authorization", value: authorization) }
        let request: HTTPClient.Request
        do {
            request = try HTTPClient.Request(
                url: baseURL + target, method: method, headers: relayed, body: body.map { .byteBuffer($0) }, tlsConfiguration: credential.tls)
        } catch {
            throw HostError(.k8sInvalid, "\(method.rawValue) \(target.prefix(200)) is not a valid request: \(Self.describe(error))")
        }
        counters.request()
        let task = relayHTTP.execute(request: request, delegate: delegate, eventLoop: .delegateAndChannel(on: eventLoop))
        let counters = self.counters
        let description = "\(method.rawValue) \(target.split(separator: "?", maxSplits: 1).first ?? "")"
        task.futureResult.whenFailure { error in
            if !(error is CancellationError), (error as? HTTPClientError) != .cancelled {
                counters.failure(HostError.kubeTransport(description, Self.describe(error)))
            }
        }
        return task
    }
}
