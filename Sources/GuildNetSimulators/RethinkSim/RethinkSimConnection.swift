import GuildNetCore
import GuildNetRethink
import Logging
import NIOCore

/// Serves one client connection: a reader task (handshake, then frames) feeding the session's
/// query loop. Both are child tasks of the connection task, itself a child of `RethinkSim.run()`.
enum RethinkSimConnection {
    static func serve(_ accepted: AcceptedConnection, shared: RethinkSimShared) async {
        // A client gone before it was served has nothing to say.
        guard let connection: NIOAsyncChannel<ByteBuffer, ByteBuffer> = try? await accepted.take() else { return }
        let channel = connection.channel
        let logger = shared.options.logger
        await withTaskCancellationHandler {
            do {
                try await connection.executeThenClose { inbound, _ in
                    try await run(inbound: inbound, channel: channel, shared: shared)
                }
            } catch {
                logger.debug("RethinkSim connection ended", metadata: ["error": "\(error)"])
            }
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    private static func run(inbound: NIOAsyncChannelInboundStream<ByteBuffer>, channel: any Channel, shared: RethinkSimShared) async throws {
        let (events, continuation) = AsyncStream<RethinkSessionEvent>.makeStream()
        let send: @Sendable (ByteBuffer) async throws -> Void = { buffer in try await channel.writeAndFlush(buffer) }
        let sessionID = shared.sessions.register(continuation)
        defer { shared.sessions.remove(sessionID) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { continuation.finish() }
                try await read(inbound, shared: shared, events: continuation, send: send)
            }
            var session = RethinkSimSession(shared: shared, events: continuation, send: send)
            do {
                for await event in events {
                    guard try await session.handle(event) else { break }
                }
            } catch {
                shared.options.logger.debug("RethinkSim write failed", metadata: ["error": "\(error)"])
            }
            session.discardHeld()
            await shared.store.unsubscribe(session.subscriptions)
            // Ends the reader when the session stopped first (oversized frame, write failure).
            channel.close(promise: nil)
            continuation.finish()
            try await group.waitForAll()
        }
    }

    /// Reads the handshake, answering it, then frames until the input ends or a frame is too large.
    private static func read(
        _ inbound: NIOAsyncChannelInboundStream<ByteBuffer>, shared: RethinkSimShared,
        events: AsyncStream<RethinkSessionEvent>.Continuation, send: @Sendable (ByteBuffer) async throws -> Void
    ) async throws {
        var buffer = ByteBuffer()
        var handshake = RethinkSimHandshake(shared: shared)
        var authenticated = false
        let maxPayload = max(0, shared.options.maxQueryBytes - 1)
        for try await chunk in inbound {
            buffer.writeImmutableBuffer(chunk)
            while !authenticated {
                switch handshake.step(&buffer) {
                case .needMore:
                    break
                case .reply(let bytes):
                    try await send(ByteBuffer(bytes: bytes))
                    continue
                case .authenticated(let bytes):
                    try await send(ByteBuffer(bytes: bytes))
                    authenticated = true
                    continue
                case .fail(let bytes):
                    try await send(ByteBuffer(bytes: bytes))
                    return
                }
                break
            }
            guard authenticated else { continue }
            while true {
                do {
                    guard let frame = try RethinkFrame.read(from: &buffer, maxPayload: maxPayload) else { break }
                    events.yield(.frame(frame))
                } catch {
                    let token = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: UInt64.self) ?? 0
                    let length: Int
                    switch error {
                    case .tooLarge(let announced): length = announced
                    }
                    events.yield(.oversized(token: token, length: length))
                    return
                }
            }
            buffer.discardReadBytes()
        }
    }
}
