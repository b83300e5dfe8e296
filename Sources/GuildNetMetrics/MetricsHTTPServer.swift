import Hummingbird
import Logging
import ServiceLifecycle

/// The HTTP listener serving GET /metrics (text/plain; version=0.0.4; charset=utf-8) from a HostMetrics, and 404 for other paths. Built on Hummingbird 2's Application.
public struct MetricsHTTPServer: Service {
    /// The content type of the Prometheus text exposition format 0.0.4.
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private let address: MetricsAddress
    private let metrics: HostMetrics
    private let logger: Logger
    private let onListening: @Sendable (_ boundPort: Int) async -> Void

    /// - Parameters:
    ///   - address: the loopback address to bind; port 0 picks a free port.
    ///   - onListening: called once the socket is bound, with the actual port.
    public init(
        address: MetricsAddress,
        metrics: HostMetrics,
        logger: Logger,
        onListening: @escaping @Sendable (_ boundPort: Int) async -> Void = { _ in }
    ) {
        self.address = address
        self.metrics = metrics
        self.logger = logger
        self.onListening = onListening
    }

    /// Runs the listener until graceful shutdown or cancellation.
    public func run() async throws {
        let metrics = self.metrics
        let router = Router()
        router.get("/metrics") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = Self.contentType
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.exposition())))
        }
        let address = self.address
        let onListening = self.onListening
        let app = Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(address.host, port: address.port)),
            onServerRunning: { channel in
                await onListening(channel.localAddress?.port ?? address.port)
            },
            logger: logger
        )
        try await app.run()
    }
}
