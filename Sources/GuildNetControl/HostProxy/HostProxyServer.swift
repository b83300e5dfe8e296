import GuildNetCore
import GuildNetKube
import GuildNetRuntime
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// `hostapp serve --proxy-addr 127.0.0.1:PORT`: an HTTPS reverse proxy serving
/// `/clusters/{cluster}/…` from that cluster's API server over its chosen route, for kubectl.
///
/// Each connection carries one exchange: the request head is read, its bearer token checked (401
/// without the right one: nothing reaches a cluster), the path stripped of `/clusters/{cluster}`,
/// the caller's `Authorization` replaced by the cluster's credentials, and the head sent on a new
/// connection of the cluster's client (``KubeClient/openRawConnection()``: its TLS, proxy and
/// route). Then bytes are copied both ways as they arrive, so request bodies, chunked watch
/// streams and upgraded connections (exec, attach, port-forward) pass unchanged. Plain requests
/// are sent with `Connection: close`: the exchange ends when the API server closes.
public final class HostProxyServer: Sendable {
    public let credentials: HostProxyCredentials
    private let host: HostActor
    private let bindHost: String
    private let bindPort: Int
    private let logger: Logger
    private let boundPort = LockedValue<Int?>(nil)

    /// Largest request head accepted.
    static let maxHeadBytes = 64 << 10

    public init(host: HostActor, address: (host: String, port: Int), credentials: HostProxyCredentials, logger: Logger) {
        self.host = host
        self.bindHost = address.host
        self.bindPort = address.port
        self.credentials = credentials
        self.logger = logger
    }

    /// The listening port once bound.
    public var port: Int? { boundPort.withLock { $0 } }

    /// The base URL of `cluster` on this proxy.
    public func url(of cluster: String) -> String? {
        port.map { "https://\(bindHost == "0.0.0.0" ? "127.0.0.1" : bindHost):\($0)/clusters/\(cluster)" }
    }

    /// Listens until cancelled; `onListening` gets the port.
    public func run(onListening: @Sendable (Int) async -> Void = { _ in }) async throws {
        let context = try credentials.serverContext()
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: bindHost, port: bindPort) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let port = listener.channel.localAddress?.port ?? bindPort
        boundPort.withLock { $0 = port }
        logger.info("host proxy listening", metadata: ["event": "proxy_listening", "port": .stringConvertible(port)])
        await onListening(port)
        try await withTaskCancellationHandler {
            try await listener.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        group.addTask { await self.serve(connection) }
                    }
                }
            }
        } onCancel: {
            listener.channel.close(promise: nil)
        }
    }

    // MARK: One exchange

    private func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                var reader = ProxyHeadReader(inbound.makeAsyncIterator())
                guard let head = try await reader.readHead(limit: Self.maxHeadBytes) else { return }
                guard let request = ProxyRequestHead(head) else {
                    try await outbound.write(Self.statusReply(400, "Bad Request", "malformed request head"))
                    return
                }
                guard let presented = request.bearerToken, credentials.accepts(presented) else {
                    try await outbound.write(Self.statusReply(401, "Unauthorized", "Unauthorized"))
                    return
                }
                guard let (clusterName, rest) = request.clusterPath else {
                    try await outbound.write(Self.statusReply(404, "NotFound", "paths are /clusters/{cluster}/…"))
                    return
                }
                let upstream: KubeRawConnection
                do {
                    let cluster = try await host.cluster(named: clusterName)
                    let client = try await cluster.kube.requireClient()
                    upstream = try await client.openRawConnection()
                } catch {
                    let failure = HostError.wrapping(error, as: .k8sTransport)
                    let code = failure.code == .clusterNotFound ? 404 : 502
                    try await outbound.write(Self.statusReply(code, code == 404 ? "NotFound" : "BadGateway", failure.message))
                    return
                }
                let rewritten = request.rewritten(path: upstream.pathPrefix + rest, host: upstream.hostHeader, authorization: upstream.authorization)
                let upgrade = request.isUpgrade
                try await upstream.channel.executeThenClose { upIn, upOut in
                    try await upOut.write(ByteBuffer(bytes: rewritten + reader.leftover))
                    let toUpstream = ProxyCopier(iterator: reader.iterator, writer: upOut)
                    let toClient = ProxyCopier(iterator: upIn.makeAsyncIterator(), writer: outbound)
                    await withTaskGroup(of: Void.self) { group in
                        group.addTask { await toUpstream.run() }
                        // A plain exchange ends with this response: the client must not reuse the
                        // connection, so the response head says `Connection: close`.
                        group.addTask { await toClient.run(closingResponse: !upgrade) }
                        // The API server's side ending ends the exchange; the client's side ending too.
                        _ = await group.next()
                        group.cancelAll()
                    }
                }
            }
        } catch {
            if !Task.isCancelled { logger.debug("host proxy connection ended: \(error)") }
        }
    }

    /// A Kubernetes `Status` reply that closes the connection.
    static func statusReply(_ code: Int, _ reason: String, _ message: String) -> ByteBuffer {
        let body: JSONValue = [
            "kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Failure", "message": .string(message),
            "reason": .string(reason), "code": .int(Int64(code)),
        ]
        let text = body.jsonString
        let phrase = code == 401 ? "Unauthorized" : (code == 404 ? "Not Found" : (code == 400 ? "Bad Request" : "Bad Gateway"))
        let head = "HTTP/1.1 \(code) \(phrase)\r\nContent-Type: application/json\r\nContent-Length: \(text.utf8.count)\r\nConnection: close\r\n\r\n"
        return ByteBuffer(string: head + text)
    }
}

/// One direction of a relayed exchange (its iterator is used by exactly one task).
final class ProxyCopier: @unchecked Sendable {
    // @unchecked: `iterator` is only touched by the single task running run(); the writer is Sendable.
    private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let writer: NIOAsyncChannelOutboundWriter<ByteBuffer>

    init(iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator, writer: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.iterator = iterator
        self.writer = writer
    }

    /// Copies until either side ends; with `closingResponse`, the first bytes are an HTTP response
    /// head, written with `Connection: close` (any `Connection`/`Keep-Alive` header dropped).
    func run(closingResponse: Bool = false) async {
        do {
            if closingResponse {
                var reader = ProxyHeadReader(iterator)
                guard let head = try await reader.readHead(limit: HostProxyServer.maxHeadBytes) else { return }
                let lines = String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n").filter { line in
                    let name = line.split(separator: ":", maxSplits: 1).first?.lowercased() ?? ""
                    return name != "connection" && name != "keep-alive"
                }
                try await writer.write(ByteBuffer(bytes: Array((lines.joined(separator: "\r\n") + "\r\nConnection: close\r\n\r\n").utf8) + reader.leftover))
                iterator = reader.iterator
            }
            while let buffer = try await iterator.next() {
                try await writer.write(buffer)
            }
        } catch {}
    }
}

/// Reads a request head (up to the blank line), keeping the bytes after it.
struct ProxyHeadReader {
    var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    var leftover: [UInt8] = []

    init(_ iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator) {
        self.iterator = iterator
    }

    /// The head without its final CRLFCRLF; `nil` when the peer closes first.
    mutating func readHead(limit: Int) async throws -> [UInt8]? {
        let end: [UInt8] = [13, 10, 13, 10]
        while true {
            if let range = leftover.firstRange(of: end) {
                let head = Array(leftover[..<range.lowerBound])
                leftover = Array(leftover[range.upperBound...])
                return head
            }
            guard leftover.count <= limit else { throw HostError(.lineTooLong, "request head longer than \(limit) bytes") }
            guard let buffer = try await iterator.next() else { return nil }
            leftover += buffer.readableBytesView
        }
    }
}

/// A parsed request head: request line and header lines, as received.
struct ProxyRequestHead {
    var method: String
    var target: String
    var headers: [(name: String, value: String)]

    init?(_ bytes: [UInt8]) {
        let lines = String(decoding: bytes, as: UTF8.self).components(separatedBy: "\r\n")
        guard let first = lines.first else { return nil }
        let parts = first.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1."), parts[1].hasPrefix("/") else { return nil }
        method = String(parts[0])
        target = String(parts[1])
        headers = []
        for line in lines.dropFirst() where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
    }

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name }?.value
    }

    var bearerToken: String? {
        guard let value = header("authorization") else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }

    /// `/clusters/{cluster}/rest?query` → (`cluster`, `/rest?query`).
    var clusterPath: (String, String)? {
        let prefix = "/clusters/"
        guard target.hasPrefix(prefix) else { return nil }
        let remainder = target.dropFirst(prefix.count)
        let end = remainder.firstIndex { $0 == "/" || $0 == "?" } ?? remainder.endIndex
        let name = String(remainder[..<end])
        guard !name.isEmpty else { return nil }
        var rest = String(remainder[end...])
        if !rest.hasPrefix("/") { rest = "/" + rest }
        return (name.removingPercentEncoding ?? name, rest)
    }

    var isUpgrade: Bool {
        header("connection")?.lowercased().contains("upgrade") == true && header("upgrade") != nil
    }

    /// The head sent to the API server: its path, its `Host`, the cluster's credentials.
    func rewritten(path: String, host: String, authorization: String?) -> [UInt8] {
        let hopByHop: Set<String> = ["authorization", "host", "proxy-authorization", "proxy-connection", "keep-alive"]
        var text = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\n"
        for (name, value) in headers where !hopByHop.contains(name.lowercased()) {
            if !isUpgrade && name.lowercased() == "connection" { continue }
            text += "\(name): \(value)\r\n"
        }
        if let authorization { text += "Authorization: \(authorization)\r\n" }
        if !isUpgrade { text += "Connection: close\r\n" }
        text += "\r\n"
        return Array(text.utf8)
    }
}
