import AsyncHTTPClient
import Foundation
import GuildNetCore
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// The Kubernetes API client of ONE cluster: its own HTTP client and connection pool, its own
/// rate limiter and credentials. Built only by ``make(config:options:logger:)``; nothing in it is
/// shared with another cluster's client (only NIO's event-loop threads are). The owner must call
/// ``shutdown()`` (it closes every connection, in-flight requests fail).
///
/// Every method throws ``HostError`` (`k8s_*` codes, see ``KubeAPIError``), or `CancellationError`
/// when the calling task is cancelled.
public final class KubeClient: Sendable {
    /// The API server URL, without a trailing slash.
    public let server: String
    /// The kubeconfig context's namespace.
    public let defaultNamespace: String
    public let options: KubeClientOptions
    /// The client's own token bucket.
    public let limiter: TokenBucket

    let http: HTTPClient
    /// The pool of requests relayed for the host proxy (``relay(_:)``): apart from `http`, so that
    /// relayed watches never take the informers' connections, and without a read timeout (a
    /// relayed watch may stay quiet for as long as its client wants).
    let relayHTTP: HTTPClient
    /// `scheme://host:port[/prefix]` used to build request URLs (the TLS server name stands in
    /// for the host when the kubeconfig sets `tls-server-name`; see the factory).
    let baseURL: String
    let authenticator: KubeAuthenticator
    /// Where and how raw connections (port-forward tunnels) reach the API server.
    let tunnelTarget: KubeTunnelTarget
    /// The TLS context of tunnels, built on first use (see `openPortForward`).
    let tunnelContext = LockedValue<NIOSSLContext?>(nil)
    let counters = KubeClientCounters()
    let logger: Logger
    let isShutDown = LockedValue(false)

    init(
        server: String, baseURL: String, defaultNamespace: String, options: KubeClientOptions, http: HTTPClient,
        relayHTTP: HTTPClient, tunnelTarget: KubeTunnelTarget, authenticator: KubeAuthenticator, logger: Logger
    ) {
        self.tunnelTarget = tunnelTarget
        self.server = server
        self.baseURL = baseURL
        self.defaultNamespace = defaultNamespace
        self.options = options
        self.http = http
        self.relayHTTP = relayHTTP
        self.authenticator = authenticator
        self.logger = logger
        limiter = TokenBucket(rate: options.qps, burst: options.burst)
    }

    /// Requests, failures, throttled waits, open watches and the last error.
    public var stats: KubeClientStats { counters.snapshot }

    /// How many times the exec credential plugin ran (nil without one): the cache keeps it at 1.
    public var execPluginRuns: Int? {
        get async {
            guard let provider = authenticator.execProvider else { return nil }
            return await provider.runs
        }
    }

    /// Closes the connection pool; in-flight requests and watches fail. Idempotent.
    public func shutdown() async throws {
        let first = isShutDown.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        guard first else { return }
        do {
            // Both pools are closed even when the first one fails to.
            var firstError: (any Error)?
            do { try await http.shutdown() } catch { firstError = error }
            try await relayHTTP.shutdown()
            if let firstError { throw firstError }
        } catch {
            throw HostError(.k8sTransport, "closing the Kubernetes client of \(server) failed: \(Self.describe(error))")
        }
    }

    // MARK: - Request core

    /// One request's raw outcome.
    enum Attempt<Success: Sendable>: Sendable {
        case success(Success)
        case failure(status: Int, retryAfter: String?, body: [UInt8])
    }

    /// Builds the request URL (`path` must start with `/`).
    func url(_ path: String, query: [(String, String)]) -> String {
        var url = baseURL + path
        if !query.isEmpty {
            url += "?" + query.map { "\(KubeAPIResource.escape($0.0))=\(KubeAPIResource.escape($0.1))" }.joined(separator: "&")
        }
        return url
    }

    /// Sends one request with rate limiting, authentication, a 401 credential refresh and
    /// `Retry-After` retries; `perform` executes it and reads what it needs of the reply.
    func exchange<Success: Sendable>(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: [UInt8]? = nil,
        contentType: String? = nil, maxRetries: Int,
        perform: @Sendable (HTTPClientRequest, String) async throws -> Attempt<Success>
    ) async throws -> Success {
        let description = "\(method.rawValue) \(path)"
        var retries = 0
        var refreshedCredential = false
        while true {
            try Task.checkCancellation()
            if isShutDown.withLock({ $0 }) {
                throw HostError(.k8sUnavailable, "\(description): the Kubernetes client was shut down")
            }
            if try await limiter.acquire() { counters.throttled() }
            let credential = try await authenticator.current()
            var request = HTTPClientRequest(url: url(path, query: query))
            request.method = method
            request.headers.add(name: "Accept", value: "application/json")
            request.headers.add(name: "User-Agent", value: options.userAgent)
            if let authorization = credential.authorization { request.headers.add(name: "Authorization", value: authorization) }
            if let tls = credential.tls { request.tlsConfiguration = tls }
            if let body {
                request.headers.add(name: "Content-Type", value: contentType ?? "application/json")
                request.body = .bytes(ByteBuffer(bytes: body))
            }
            counters.request()
            let started = ContinuousClock.now
            let attempt: Attempt<Success>
            do {
                attempt = try await perform(request, description)
            } catch {
                if Task.isCancelled || error is CancellationError { throw CancellationError() }
                let hostError = (error as? HostError) ?? .kubeTransport(description, Self.describe(error))
                counters.failure(hostError)
                logger.debug("kube request failed", metadata: ["request": "\(description)", "error": "\(hostError)"])
                throw hostError
            }
            switch attempt {
            case .success(let value):
                logger.trace(
                    "kube request", metadata: ["request": "\(description)", "ms": "\(Int((ContinuousClock.now - started).seconds * 1000))"])
                return value
            case .failure(let status, let retryAfterHeader, let errorBody):
                let apiError = KubeAPIError.decode(
                    statusCode: status, body: errorBody, retryAfterHeader: retryAfterHeader, request: description)
                counters.failure(apiError.hostError)
                logger.debug("kube request refused", metadata: ["request": "\(description)", "status": "\(status)", "reason": "\(apiError.reason)"])
                if status == 401, authenticator.refreshable, !refreshedCredential {
                    refreshedCredential = true
                    counters.retry()
                    await authenticator.invalidate()
                    continue
                }
                if status == 429 || status >= 500, let seconds = apiError.retryAfterSeconds, retries < maxRetries {
                    retries += 1
                    counters.retry()
                    try await Task.sleep(for: min(.seconds(seconds), options.maxRetryAfter))
                    continue
                }
                throw apiError.hostError
            }
        }
    }

    /// A complete (non-watch) request: the reply body of a 2xx, within ``KubeClientOptions/requestTimeout``.
    func send(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: [UInt8]? = nil, contentType: String? = nil
    ) async throws -> [UInt8] {
        let http = self.http
        let timeout = options.requestTimeout
        let maxBytes = options.maxResponseBytes
        return try await exchange(method, path, query: query, body: body, contentType: contentType, maxRetries: options.maxRetries) {
            request, description in
            do {
                return try await withDeadline(timeout, description) {
                    let response = try await http.execute(request, deadline: .now() + .nanoseconds(Int64(timeout.seconds * 1e9)))
                    let buffer = try await response.body.collect(upTo: maxBytes)
                    let bytes = Array(buffer.readableBytesView)
                    let status = Int(response.status.code)
                    if (200..<300).contains(status) { return Attempt.success(bytes) }
                    return Attempt.failure(status: status, retryAfter: response.headers.first(name: "Retry-After"), body: bytes)
                }
            } catch let error as HostError where error.code == .timeout {
                throw HostError.kubeTransport(description, "no complete reply within \(timeout)")
            }
        }
    }

    /// Sends a request and parses its JSON reply.
    func sendJSON(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: JSONValue? = nil, contentType: String? = nil
    ) async throws -> JSONValue {
        let bytes = try await send(method, path, query: query, body: body?.serialized, contentType: contentType)
        do {
            return try JSONParser.parse(bytes)
        } catch {
            throw HostError.kubeBadResponse("\(method.rawValue) \(path)", "the reply is not valid JSON (\(error))")
        }
    }

    /// A short description of a transport error (AsyncHTTPClient, NIO, TLS); never holds headers.
    static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        return text.utf8.count <= 300 ? text : String(text.prefix(300)) + "…"
    }
}
