import Logging
import NIOCore

/// Serves one connection of either transport: dispatches decoded lines to the handler with bounded
/// concurrency, ordered per cluster by a ``RequestSequencer``, and runs the connection's single
/// ordered writer. Everything runs in child tasks of the caller.
enum ConnectionRunner {
    /// Installs the line decoder on a new channel and wraps it for async use (both transports).
    static func makeLineChannel(_ channel: any Channel, maxLineBytes: Int) -> EventLoopFuture<NIOAsyncChannel<LineEvent, ByteBuffer>> {
        channel.eventLoop.makeCompletedFuture {
            try addLineDecoder(to: channel.pipeline.syncOperations, maxLineBytes: maxLineBytes)
            return try NIOAsyncChannel<LineEvent, ByteBuffer>(wrappingChannelSynchronously: channel)
        }
    }

    /// The line decoder every control connection reads through.
    static func addLineDecoder(to pipeline: ChannelPipeline.SynchronousOperations, maxLineBytes: Int) throws {
        try pipeline.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLineBytes: maxLineBytes)))
    }

    /// Serves one wrapped channel until its input ends, then closes it.
    static func serve(
        _ connection: NIOAsyncChannel<LineEvent, ByteBuffer>,
        output: ControlOutput,
        configuration: ControlTransportConfiguration,
        handler: any ControlLineHandler,
        logger: Logger
    ) async throws {
        let channel = connection.channel
        try await connection.executeThenClose { inbound, _ in
            await run(events: inbound, output: output, configuration: configuration, handler: handler, logger: logger) { buffer in
                try await channel.writeAndFlush(buffer)
            }
        }
    }

    static func run<Events: AsyncSequence>(
        events: Events,
        output: ControlOutput,
        configuration: ControlTransportConfiguration,
        handler: any ControlLineHandler,
        logger: Logger,
        write: @escaping @Sendable (ByteBuffer) async throws -> Void
    ) async where Events.Element == LineEvent {
        let queue = output.queue
        let sequencer = RequestSequencer()
        let maxInFlight = max(1, configuration.maxInFlightPerConnection)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await runWriter(queue: queue, logger: logger, write: write)
            }
            group.addTask {
                await output.streams.runPumps()
            }
            await withTaskGroup(of: Void.self) { handlers in
                var inFlight = 0
                do {
                    for try await event in events {
                        if inFlight >= maxInFlight {
                            _ = await handlers.next()
                            inFlight -= 1
                        }
                        switch event {
                        case .line(let line):
                            // Parsed here, in arrival order, so per-cluster ordering follows the wire.
                            let accepted = handler.accept(line: line)
                            let ticket = sequencer.enter(accepted.sequencing)
                            handlers.addTask {
                                await sequencer.wait(for: ticket)
                                await accepted.run(output)
                                sequencer.finish(ticket)
                            }
                        case .oversized(let byteCount):
                            logger.debug("control line over the limit discarded", metadata: ["bytes": "\(byteCount)"])
                            handlers.addTask { await handler.handleOversizedLine(byteCount: byteCount, output: output) }
                        }
                        inFlight += 1
                    }
                } catch {
                    // The connection failed (reset, read error): nobody will read the replies.
                    logger.debug("control connection input failed", metadata: ["error": "\(error)"])
                    handlers.cancelAll()
                }
                await handlers.waitForAll()
            }
            await handler.connectionClosed(output)
            output.streams.close()
            queue.finish()
            await group.waitForAll()
        }
    }

    /// Writes batches in order until the queue is drained and finished, or a write fails.
    private static func runWriter(
        queue: OutputQueue,
        logger: Logger,
        write: @Sendable (ByteBuffer) async throws -> Void
    ) async {
        let allocator = ByteBufferAllocator()
        while let batch = await queue.nextBatch() {
            var buffer = allocator.buffer(capacity: batch.reduce(0) { $0 + $1.count + 1 })
            for line in batch {
                buffer.writeBytes(line)
                buffer.writeInteger(UInt8(ascii: "\n"))
            }
            do {
                try await write(buffer)
            } catch {
                logger.debug("control connection output failed", metadata: ["error": "\(error)"])
                queue.close()
                return
            }
        }
    }
}
