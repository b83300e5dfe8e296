import GuildNetCore
import NIOCore
import NIOPosix

/// A tiny SOCKS5 server (RFC 1928 CONNECT, no authentication) with its own name map, as tailscaled's
/// userspace proxy resolves MagicDNS names that the host cannot: a domain request is connected to
/// `names[domain]` and refused (reply 4, host unreachable) when the map lacks it. It records every
/// name asked for.
public final class TestSOCKS5Server: Sendable {
    public let port: Int
    private let names: [String: String]
    private let listener: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>
    private let asked = LockedValue<[String]>([])

    /// The domain names clients asked for, in order.
    public var requestedNames: [String] { asked.withLock { $0 } }

    private init(names: [String: String], listener: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>, port: Int) {
        self.names = names
        self.listener = listener
        self.port = port
    }

    /// Runs a server mapping `names` (domain → IP address) on 127.0.0.1 for `body`.
    public static func withRunning<T: Sendable>(names: [String: String], _ body: @Sendable (TestSOCKS5Server) async throws -> T) async throws -> T {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        let server = TestSOCKS5Server(names: names, listener: listener, port: listener.channel.localAddress?.port ?? 0)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await server.serve() }
            defer { group.cancelAll() }
            let result = try await body(server)
            try? await listener.channel.close()
            return result
        }
    }

    private func serve() async {
        try? await listener.executeThenClose { inbound in
            try await withThrowingDiscardingTaskGroup { group in
                for try await connection in inbound {
                    group.addTask { await self.handle(connection) }
                }
            }
        }
    }

    private func handle(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        try? await connection.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            var pending: [UInt8] = []
            func read(_ count: Int) async throws -> [UInt8] {
                while pending.count < count {
                    guard let buffer = try await iterator.next() else { throw TestFailure("SOCKS client closed") }
                    pending += buffer.readableBytesView
                }
                let bytes = Array(pending.prefix(count))
                pending.removeFirst(count)
                return bytes
            }
            let greeting = try await read(2)
            _ = try await read(Int(greeting[1]))
            try await outbound.write(ByteBuffer(bytes: [5, 0]))
            let head = try await read(4)
            guard head[1] == 1, head[3] == 3 else {
                try await outbound.write(ByteBuffer(bytes: [5, 8, 0, 1, 0, 0, 0, 0, 0, 0]))
                return
            }
            let length = try await read(1)
            let name = String(decoding: try await read(Int(length[0])), as: UTF8.self)
            let portBytes = try await read(2)
            let port = Int(portBytes[0]) << 8 | Int(portBytes[1])
            asked.withLock { $0.append(name) }
            guard let address = names[name] else {
                try await outbound.write(ByteBuffer(bytes: [5, 4, 0, 1, 0, 0, 0, 0, 0, 0]))
                return
            }
            let upstream = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: address, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
                }
            try await outbound.write(ByteBuffer(bytes: [5, 0, 0, 1, 127, 0, 0, 1, 0, 0]))
            let early = pending
            try await upstream.executeThenClose { upIn, upOut in
                if !early.isEmpty { try await upOut.write(ByteBuffer(bytes: early)) }
                let clientSide = UnsafeTransfer(iterator)
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        var from = clientSide.value
                        while let buffer = try? await from.next() {
                            if (try? await upOut.write(buffer)) == nil { break }
                        }
                    }
                    group.addTask {
                        do {
                            for try await buffer in upIn { try await outbound.write(buffer) }
                        } catch {}
                    }
                    _ = await group.next()
                    group.cancelAll()
                }
            }
        }
    }
}

/// Moves a value used by exactly one task afterwards into that task.
struct UnsafeTransfer<Value>: @unchecked Sendable {
    // @unchecked: the sender never touches `value` again after handing it over.
    var value: Value
    init(_ value: Value) { self.value = value }
}
