import Foundation
import GuildNetCore
import NIOCore
import NIOPosix
import TestSupport
import Testing

@Suite("AcceptedConnection")
struct AcceptedConnectionTests {
    /// The receive queue of the loopback TCP socket `localPort` ↔ `remotePort` (/proc/net/tcp), if listed.
    static func receiveQueue(localPort: Int, remotePort: Int) -> Int? {
        guard let table = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return nil }
        let local = String(format: ":%04X", localPort)
        let remote = String(format: ":%04X", remotePort)
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count > 4, fields[1].hasSuffix(local), fields[2].hasSuffix(remote) else { continue }
            return Int(fields[4].split(separator: ":").last ?? "", radix: 16)
        }
        return nil
    }

    static func listen() async throws -> NIOAsyncChannel<AcceptedConnection, Never> {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelOption(.autoRead, value: false)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .bind(host: "127.0.0.1", port: 0, childChannelInitializer: AcceptedConnection.initializer)
    }

    /// Bytes and the half-close a client sent before anyone took its connection (NIO reads them
    /// at the EOF even with autoRead off) reach the handler that takes it, in order.
    @Test("what arrived before take, data and EOF, is replayed to the taker")
    func heldInboundIsReplayed() async throws {
        let listener = try await Self.listen()
        let port = try #require(listener.channel.localAddress?.port)
        try await listener.executeThenClose { inbound in
            let fd = try connectLoopback(port: port)
            defer { close(fd) }
            let payload = Array("held until taken".utf8)
            #expect(payload.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == payload.count)
            shutdown(fd, Int32(SHUT_WR))
            var connections = inbound.makeAsyncIterator()
            let accepted = try #require(try await connections.next())
            // NIO drains the socket at the EOF even with autoRead off: give it a moment to, so the
            // bytes are usually in the holder when the connection is taken. Either way they must
            // all arrive (if NIO has not read yet, they come by the normal read path).
            let clientPort = try #require(accepted.channel.remoteAddress?.port)
            try? await eventually("NIO read the bytes and the EOF", timeout: .seconds(3)) {
                Self.receiveQueue(localPort: port, remotePort: clientPort) == 0
            }
            let connection: NIOAsyncChannel<ByteBuffer, ByteBuffer> = try await accepted.take()
            let received = try await connection.executeThenClose { inbound, _ in
                var bytes: [UInt8] = []
                for try await buffer in inbound { bytes += buffer.readableBytesView }
                return bytes
            }
            #expect(received == payload)
        }
    }

    /// The crash this type exists for: a listener iterated by a task that is cancelled while
    /// accepted connections wait in its buffer (apple/swift-nio#2813). They are closed instead.
    @Test("connections nobody took are closed when the accept loop is cancelled, without a crash")
    func untakenConnectionsAreClosed() async throws {
        let baseline = ProcessResources.openFileCount()
        let listener = try await Self.listen()
        let port = try #require(listener.channel.localAddress?.port)
        let clients = try (0..<8).map { _ in try connectLoopback(port: port) }
        defer { for fd in clients { close(fd) } }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await listener.executeThenClose { inbound in
                    var connections = inbound.makeAsyncIterator()
                    // Takes one, then waits forever with the other seven buffered.
                    if let first = try await connections.next() {
                        let taken: NIOAsyncChannel<ByteBuffer, ByteBuffer> = try await first.take()
                        try await taken.executeThenClose { _, _ in }
                    }
                    while !Task.isCancelled { try await Task.sleep(for: .seconds(600)) }
                }
            }
            // The listener, 8 client sockets and the 8 NIO accepted (one taken and closed, 7 buffered).
            try? await eventually("every client was accepted") { ProcessResources.openFileCount() >= baseline + 1 + 8 + 7 }
            group.cancelAll()
        }
        // Every client sees its connection closed by the server.
        for fd in clients {
            try await eventually("client \(fd) sees EOF", timeout: .seconds(20)) {
                var byte: UInt8 = 0
                return recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) == 0
            }
        }
    }
}
