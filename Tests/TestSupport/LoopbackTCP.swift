import GuildNetCore
import NIOCore
import NIOPosix

/// A TCP client for tests that talk to a local listener (a port-forward): non-blocking (NIO),
/// so a test never blocks a thread of the cooperative pool.
public enum LoopbackTCP {
    /// Connects to `127.0.0.1:port`, sends `payload`, and reads until `expect` bytes arrived (or,
    /// with `expect == nil`, until the other side closes). Throws ``ConditionTimeout`` after `timeout`.
    public static func exchange(
        port: Int, send payload: [UInt8], expect: Int? = nil, timeout: Duration = .seconds(20)
    ) async throws -> [UInt8] {
        try await withDeadline(timeout, "a TCP exchange with 127.0.0.1:\(port)") {
            let channel = try await connect(port: port)
            return try await channel.executeThenClose { inbound, outbound in
                var received: [UInt8] = []
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        var offset = 0
                        while offset < payload.count {
                            let end = min(payload.count, offset + 65_536)
                            try await outbound.write(ByteBuffer(bytes: payload[offset..<end]))
                            offset = end
                        }
                    }
                    for try await buffer in inbound {
                        received += buffer.readableBytesView
                        if let expect, received.count >= expect { break }
                    }
                    try await group.waitForAll()
                }
                return received
            }
        }
    }

    /// An HTTP/1.1 `GET /` with `Connection: close`; returns the response body.
    public static func httpGet(port: Int, timeout: Duration = .seconds(20)) async throws -> String {
        let request = Array("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        let response = String(decoding: try await exchange(port: port, send: request, timeout: timeout), as: UTF8.self)
        guard let split = response.range(of: "\r\n\r\n") else { return "" }
        return String(response[split.upperBound...])
    }

    /// `true` when a connection to `127.0.0.1:port` is refused (nothing listens).
    public static func isRefused(port: Int) async -> Bool {
        do {
            let channel = try await connect(port: port)
            try? await channel.executeThenClose { _, _ in }
            return false
        } catch {
            return true
        }
    }

    /// An open connection, for tests that hold connections (use it with `executeThenClose`, once).
    public static func connect(port: Int) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
    }
}
