/// Tuning of one cluster's ``KubeClient``: its rate limiter, timeouts, pool and retry policy.
public struct KubeClientOptions: Sendable, Equatable {
    /// Sustained requests per second (client-go's default for controllers is 50 here).
    public var qps: Double = 50
    /// Requests allowed in a burst above `qps`.
    public var burst: Int = 100
    /// Deadline of one non-watch request (headers and body).
    public var requestTimeout: Duration = .seconds(30)
    /// TCP + TLS connection establishment.
    public var connectTimeout: Duration = .seconds(10)
    /// A watch that receives nothing (not even a bookmark) for this long is failed as a transport
    /// error (also the read-idle limit of any request). Longer than the longest `timeoutSeconds`.
    public var watchIdleTimeout: Duration = .seconds(660)
    /// HTTP/1.1 connections to the API server in this client's own pool. Each open watch holds one
    /// (over HTTP/2 they share one connection), so this bounds watches plus concurrent requests.
    public var maxConnections: Int = 100
    /// Idle pooled connections are closed after this long.
    public var idleConnectionTimeout: Duration = .seconds(60)
    /// Automatic retries of a request answered 429 or 5xx with an integer `Retry-After`.
    public var maxRetries: Int = 3
    /// Longest `Retry-After` honoured before retrying (a longer one is waited for this long).
    public var maxRetryAfter: Duration = .seconds(10)
    /// Largest non-watch response body accepted.
    public var maxResponseBytes: Int = 256 << 20
    /// Largest single watch event line accepted (a longer one is a `k8s_bad_response`).
    public var maxWatchLineBytes: Int = 16 << 20
    /// `User-Agent` sent on every request.
    public var userAgent: String = "guildnet-host/1.0"

    public init() {}

    public init(qps: Double, burst: Int, requestTimeout: Duration = .seconds(30), connectTimeout: Duration = .seconds(10), maxConnections: Int = 100) {
        self.qps = qps
        self.burst = burst
        self.requestTimeout = requestTimeout
        self.connectTimeout = connectTimeout
        self.maxConnections = maxConnections
    }
}
