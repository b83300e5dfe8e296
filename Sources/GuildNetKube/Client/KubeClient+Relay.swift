import AsyncHTTPClient
import GuildNetCore
import NIOCore
import NIOHTTP1

extension KubeClient {
    /// Relays one request for the host proxy over a pooled keep-alive connection of the cluster's
    /// route, with the cluster's credentials; the reply streams as the server sends it.
    ///
    /// - Parameters:
    ///   - target: the path and query after the server URL (`/api/v1/pods?watch=1`).
    ///   - headers: the caller's end-to-end headers; its `Authorization` and `Host` are replaced.
    /// - Returns: the reply once its head arrived (its body is read by the caller; the
    ///   connection returns to the pool when it is read or dropped).
    /// - Throws: `k8s_unavailable` after ``shutdown()``, `k8s_transport` when no reply head arrives
    ///   within ``KubeClientOptions/requestTimeout``. Not rate limited, like tunnels: the caller
    ///   (kubectl) limits itself.
    public func relay(method: HTTPMethod, target: String, headers: HTTPHeaders, body: ByteBuffer?) async throws -> HTTPClientResponse {
        if isShutDown.withLock({ $0 }) {
            throw HostError(.k8sUnavailable, "the Kubernetes client of \(server) was shut down")
        }
        let credential = try await authenticator.current()
        var request = HTTPClientRequest(url: baseURL + target)
        request.method = method
        request.headers = headers
        request.headers.remove(name: "Authorization")
        request.headers.remove(name: "Host")
        if let authorization = credential.authorization { request.headers.add(name: "Authorization", value: authorization) }
        if let tls = credential.tls { request.tlsConfiguration = tls }
        if let body { request.body = .bytes(body) }
        let description = "\(method.rawValue) \(target.split(separator: "?", maxSplits: 1).first ?? "")"
        counters.request()
        do {
            // The deadline covers the reply head only; the body streams for as long as it lasts.
            return try await relayHTTP.execute(request, deadline: .now() + .nanoseconds(Int64(options.requestTimeout.seconds * 1e9)))
        } catch {
            if Task.isCancelled { throw CancellationError() }
            let hostError = HostError.kubeTransport(description, Self.describe(error))
            counters.failure(hostError)
            throw hostError
        }
    }
}
