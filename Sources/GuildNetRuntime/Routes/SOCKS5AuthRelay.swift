import GuildNetCore
import Logging
import NIOCore
import NIOPosix

/// A SOCKS5 relay on 127.0.0.1 that adds RFC 1929 username/password authentication: the cluster's
/// client (whose HTTP stack speaks SOCKS5 without authentication) connects here; each connection's
/// CONNECT request (host names kept unresolved, ATYP domain) is replayed to `upstream` after
/// authenticating there, then bytes are copied both ways. One per cluster whose tailnet route has
/// credentials; it only listens on loopback and only while that route is tried or used.
final class SOCKS5AuthRelay: Sendable {
    /// RFC 1929 credentials (secret: never logged).
    struct Credentials: Sendable, Equatable {
        var username: String
        var password: String
    }

    let upstream: String
    let credentials: Credentials
    private let logger: Logger
    private let bound = LockedValue<Bound>(Bound())
    private let (stops, stopContinuation) = AsyncStream<Void>.makeStream()

    private struct Bound {
        var port: Int?
        var failed = false
        var stopped = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    init(upstream: String, credentials: Credentials, logger: Logger) {
        self.upstream = upstream
        self.credentials = credentials
        self.logger = logger
    }

    /// The listening port once bound; `nil` if binding failed or the relay stopped.
    func port() async -> Int? {
        await withCheckedContinuation { continuation in
            let ready = bound.withLock { state -> Bool in
                if state.port != nil || state.failed || state.stopped { return true }
                state.waiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
        return bound.withLock { $0.stopped ? nil : $0.port }
    }

    /// Ends ``run()``: the listener and every relayed connection close. Idempotent.
    func stop() {
        stopContinuation.finish()
    }

    /// Listens and relays until ``stop()`` or cancellation.
    func run() async {
        let listener: NIOAsyncChannel<AcceptedConnection, Never>
        do {
            listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.autoRead, value: false)  // until relayed (AcceptedConnection)
                .bind(host: "127.0.0.1", port: 0, childChannelInitializer: AcceptedConnection.initializer)
        } catch {
            logger.error("SOCKS5 relay cannot listen: \(error)", metadata: ["event": "route_failed", "route": "tailnet"])
            settle { $0.failed = true }
            return
        }
        settle { $0.port = listener.channel.localAddress?.port }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await listener.executeThenClose { inbound in
                    try await withThrowingDiscardingTaskGroup { connections in
                        for try await connection in inbound {
                            connections.addTask { await self.relay(connection) }
                        }
                    }
                }
            }
            group.addTask { for await _ in self.stops {} }
            _ = await group.next()
            group.cancelAll()
        }
        try? await listener.channel.close()
        settle { $0.stopped = true }
    }

    private func settle(_ change: (inout Bound) -> Void) {
        let waiters = bound.withLock { state -> [CheckedContinuation<Void, Never>] in
            change(&state)
            let waiters = state.waiters
            state.waiters.removeAll()
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    // MARK: One connection

    private func relay(_ accepted: AcceptedConnection) async {
        do {
            let client: NIOAsyncChannel<ByteBuffer, ByteBuffer> = try await accepted.take()
            try await client.executeThenClose { clientIn, clientOut in
                var fromClient = SOCKSReader(clientIn.makeAsyncIterator())
                // Greeting: VER NMETHODS METHODS; the local side needs no authentication.
                let head = try await fromClient.read(2)
                guard head[0] == 5 else { throw HostError(.invalidRequest, "not SOCKS5") }
                _ = try await fromClient.read(Int(head[1]))
                try await clientOut.write(ByteBuffer(bytes: [5, 0]))
                let request = try await fromClient.readRequest()
                let (host, port) = Self.split(upstream)
                let upstreamChannel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connectTimeout(.seconds(10))
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .connect(host: host, port: port) { channel in
                        channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
                    }
                try await upstreamChannel.executeThenClose { upIn, upOut in
                    var fromUpstream = SOCKSReader(upIn.makeAsyncIterator())
                    try await upOut.write(ByteBuffer(bytes: [5, 1, 2]))
                    let method = try await fromUpstream.read(2)
                    guard method == [5, 2] else {
                        try await clientOut.write(ByteBuffer(bytes: [5, 1, 0, 1, 0, 0, 0, 0, 0, 0]))
                        throw HostError(.io, "the SOCKS5 proxy did not accept username/password authentication")
                    }
                    let user = Array(credentials.username.utf8.prefix(255))
                    let password = Array(credentials.password.utf8.prefix(255))
                    try await upOut.write(ByteBuffer(bytes: [1, UInt8(user.count)] + user + [UInt8(password.count)] + password))
                    let status = try await fromUpstream.read(2)
                    guard status[1] == 0 else {
                        try await clientOut.write(ByteBuffer(bytes: [5, 2, 0, 1, 0, 0, 0, 0, 0, 0]))
                        throw HostError(.io, "the SOCKS5 proxy refused the username/password")
                    }
                    try await upOut.write(ByteBuffer(bytes: request))
                    let reply = try await fromUpstream.readRequest()
                    try await clientOut.write(ByteBuffer(bytes: reply))
                    guard reply[1] == 0 else { return }
                    try await ByteStreamCopier.pipe(
                        clientLeft: fromClient.leftover, clientIn: fromClient.iterator, clientOut: clientOut,
                        upstreamLeft: fromUpstream.leftover, upstreamIn: fromUpstream.iterator, upstreamOut: upOut)
                }
            }
        } catch {
            if !Task.isCancelled { logger.debug("SOCKS5 relay connection ended: \(error)") }
        }
    }

    static func split(_ address: String) -> (String, Int) {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else { return (address, 1080) }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }
}

/// Reads exact byte counts from a connection, keeping what arrived beyond them.
struct SOCKSReader {
    var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    var leftover: [UInt8] = []

    init(_ iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator) {
        self.iterator = iterator
    }

    mutating func read(_ count: Int) async throws -> [UInt8] {
        while leftover.count < count {
            guard let buffer = try await iterator.next() else { throw HostError(.io, "the SOCKS5 peer closed the connection") }
            leftover += buffer.readableBytesView
        }
        let bytes = Array(leftover.prefix(count))
        leftover.removeFirst(count)
        return bytes
    }

    /// A request or reply: VER CMD/REP RSV ATYP ADDR PORT, returned whole.
    mutating func readRequest() async throws -> [UInt8] {
        let head = try await read(4)
        guard head[0] == 5 else { throw HostError(.invalidRequest, "not SOCKS5") }
        let address: [UInt8]
        switch head[3] {
        case 1: address = try await read(4)
        case 4: address = try await read(16)
        case 3:
            let length = try await read(1)
            address = length + (try await read(Int(length[0])))
        default: throw HostError(.invalidRequest, "SOCKS5 address type \(head[3]) is not supported")
        }
        return head + address + (try await read(2))
    }
}
