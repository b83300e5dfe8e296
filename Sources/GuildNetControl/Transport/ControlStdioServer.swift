import GuildNetCore
import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Serves one stream pair (the daemon's stdin/stdout) with the same framing as the socket; returns
/// when input reaches EOF (after in-flight requests are answered and their replies flushed) or the
/// task is cancelled.
///
/// Pipes, sockets and terminals are served with `NIOPipeBootstrap` on duplicates of the descriptors;
/// anything else (a regular file, `/dev/null`) is read and written with blocking calls on a dedicated
/// two-thread pool that this call owns and awaits. The caller keeps ownership of `inputFD` and
/// `outputFD`: they are never closed, and their file status flags (`O_NONBLOCK`) are restored on exit.
public struct ControlStdioServer: Sendable {
    public let inputFD: CInt
    public let outputFD: CInt
    public let configuration: ControlTransportConfiguration
    let handler: any ControlLineHandler
    let logger: Logger

    public init(
        inputFD: CInt = 0,
        outputFD: CInt = 1,
        configuration: ControlTransportConfiguration,
        handler: any ControlLineHandler,
        logger: Logger
    ) {
        self.inputFD = inputFD
        self.outputFD = outputFD
        self.configuration = configuration
        self.handler = handler
        self.logger = logger
    }

    /// Serves until input EOF or cancellation.
    /// - Throws: ``HostError`` (`.io`) when the descriptors cannot be used at all.
    public func run() async throws {
        if Self.isPollable(inputFD) && Self.isPollable(outputFD) {
            try await runOnPipeChannel()
        } else {
            try await runBlocking()
        }
    }

    /// FIFOs, sockets and terminals can be registered with epoll/kqueue; regular files and most
    /// devices (`/dev/null`) cannot.
    static func isPollable(_ fd: CInt) -> Bool {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return false }
        switch info.st_mode & S_IFMT {
        case S_IFIFO, S_IFSOCK: return true
        case S_IFCHR: return isatty(fd) == 1
        default: return false
        }
    }

    private func runOnPipeChannel() async throws {
        let inputFlags = fcntl(inputFD, F_GETFL)
        let outputFlags = fcntl(outputFD, F_GETFL)
        defer {
            // NIO made the (shared) open file descriptions non-blocking; give them back as we found them.
            if inputFlags >= 0 { _ = fcntl(inputFD, F_SETFL, inputFlags) }
            if outputFlags >= 0 { _ = fcntl(outputFD, F_SETFL, outputFlags) }
        }
        let inputCopy = dup(inputFD)
        guard inputCopy >= 0 else {
            throw HostError(.io, "cannot duplicate control input descriptor \(inputFD): \(POSIXErrorText.current())")
        }
        let outputCopy = dup(outputFD)
        guard outputCopy >= 0 else {
            let text = POSIXErrorText.current()
            close(inputCopy)
            throw HostError(.io, "cannot duplicate control output descriptor \(outputFD): \(text)")
        }
        let maxLineBytes = configuration.maxLineBytes
        let connection: NIOAsyncChannel<LineEvent, ByteBuffer>
        do {
            // From here NIO owns (and eventually closes) the duplicates.
            connection = try await NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.allowRemoteHalfClosure, value: true)
                .takingOwnershipOfDescriptors(input: inputCopy, output: outputCopy) { channel in
                    ConnectionRunner.makeLineChannel(channel, maxLineBytes: maxLineBytes)
                }
        } catch {
            throw HostError(.io, "cannot serve control protocol on descriptors \(inputFD)/\(outputFD): \(error)")
        }
        let channel = connection.channel
        let output = ControlOutput(connectionID: nextConnectionID(), queue: OutputQueue())
        var logger = self.logger
        logger[metadataKey: "connection_id"] = "\(output.connectionID)"
        let configuration = self.configuration
        let handler = self.handler
        try await withTaskCancellationHandler {
            try await ConnectionRunner.serve(
                connection, output: output, configuration: configuration, handler: handler, logger: logger)
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    private func runBlocking() async throws {
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        let wakeup: BlockingIO.Wakeup
        do {
            wakeup = try BlockingIO.Wakeup()
        } catch {
            try? await pool.shutdownGracefully()
            throw error
        }
        let input = BlockingLineSequence(fd: inputFD, pool: pool, wakeup: wakeup, maxLineBytes: configuration.maxLineBytes)
        let outputFD = self.outputFD
        let output = ControlOutput(connectionID: nextConnectionID(), queue: OutputQueue())
        var logger = self.logger
        logger[metadataKey: "connection_id"] = "\(output.connectionID)"
        logger.debug("control stdio uses blocking I/O (input or output is not a pipe, socket or terminal)")
        await withTaskCancellationHandler {
            await ConnectionRunner.run(
                events: input,
                output: output,
                configuration: configuration,
                handler: handler,
                logger: logger
            ) { buffer in
                try await pool.runIfActive {
                    try BlockingIO.writeAll(buffer, to: outputFD, wakeup: wakeup)
                }
            }
        } onCancel: {
            wakeup.fire()
        }
        try? await pool.shutdownGracefully()
        wakeup.close()
    }
}

/// Blocking reads and writes that a ``Wakeup`` can interrupt (used on a dedicated thread pool).
enum BlockingIO {
    static let chunkSize = 64 << 10

    /// A self-pipe: once fired, every poll that includes it returns.
    struct Wakeup: Sendable {
        let readFD: CInt
        let writeFD: CInt

        init() throws {
            var fds: [CInt] = [-1, -1]
            guard pipe(&fds) == 0 else {
                throw HostError(.io, "cannot create wake-up pipe: \(POSIXErrorText.current())")
            }
            readFD = fds[0]
            writeFD = fds[1]
        }

        func fire() {
            var byte: UInt8 = 1
            _ = write(writeFD, &byte, 1)
        }

        func close() {
            _ = closeFD(readFD)
            _ = closeFD(writeFD)
        }
    }

    private static func closeFD(_ fd: CInt) -> CInt {
        #if canImport(Glibc)
        Glibc.close(fd)
        #else
        Darwin.close(fd)
        #endif
    }

    /// Waits until `fd` is ready for `events`; `false` when the wake-up fired first.
    static func waitReady(_ fd: CInt, events: Int16, wakeup: Wakeup) throws -> Bool {
        var fds = [
            pollfd(fd: fd, events: events, revents: 0),
            pollfd(fd: wakeup.readFD, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            let result = poll(&fds, 2, -1)
            if result < 0 {
                if errno == EINTR { continue }
                throw HostError(.io, "poll on descriptor \(fd) failed: \(POSIXErrorText.current())")
            }
            if fds[1].revents != 0 { return false }
            if fds[0].revents != 0 { return true }
        }
    }

    /// One chunk from `fd`; `nil` at EOF or when the wake-up fired.
    static func readChunk(from fd: CInt, wakeup: Wakeup) throws -> ByteBuffer? {
        var buffer = ByteBufferAllocator().buffer(capacity: chunkSize)
        while true {
            guard try waitReady(fd, events: Int16(POLLIN), wakeup: wakeup) else { return nil }
            var result = 0
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: chunkSize) { pointer in
                result = read(fd, pointer.baseAddress, pointer.count)
                return max(result, 0)
            }
            if result > 0 { return buffer }
            if result == 0 { return nil }
            let error = errno
            if error == EINTR || error == EAGAIN { continue }
            throw HostError(.io, "read from descriptor \(fd) failed: \(POSIXErrorText.describe(error))")
        }
    }

    static func writeAll(_ buffer: ByteBuffer, to fd: CInt, wakeup: Wakeup) throws {
        var remaining = buffer
        while remaining.readableBytes > 0 {
            guard try waitReady(fd, events: Int16(POLLOUT), wakeup: wakeup) else { throw CancellationError() }
            let written = remaining.withUnsafeReadableBytes { pointer in
                write(fd, pointer.baseAddress, pointer.count)
            }
            if written > 0 {
                remaining.moveReaderIndex(forwardBy: written)
                continue
            }
            let error = errno
            if written < 0 && (error == EINTR || error == EAGAIN) { continue }
            throw HostError(.io, "write to descriptor \(fd) failed: \(POSIXErrorText.describe(error))")
        }
    }
}

/// Lines from a descriptor read with blocking calls on a thread pool, decoded by ``LineFrameDecoder``.
/// Ends at EOF, or when the task is cancelled (the wake-up fires).
struct BlockingLineSequence: AsyncSequence {
    typealias Element = LineEvent

    let fd: CInt
    let pool: NIOThreadPool
    let wakeup: BlockingIO.Wakeup
    let maxLineBytes: Int

    func makeAsyncIterator() -> Iterator {
        Iterator(fd: fd, pool: pool, wakeup: wakeup, processor: NIOSingleStepByteToMessageProcessor(LineFrameDecoder(maxLineBytes: maxLineBytes)))
    }

    struct Iterator: AsyncIteratorProtocol {
        let fd: CInt
        let pool: NIOThreadPool
        let wakeup: BlockingIO.Wakeup
        var processor: NIOSingleStepByteToMessageProcessor<LineFrameDecoder>
        var pending = CircularBuffer<LineEvent>()
        var reachedEnd = false

        init(fd: CInt, pool: NIOThreadPool, wakeup: BlockingIO.Wakeup, processor: NIOSingleStepByteToMessageProcessor<LineFrameDecoder>) {
            self.fd = fd
            self.pool = pool
            self.wakeup = wakeup
            self.processor = processor
        }

        mutating func next() async throws -> LineEvent? {
            while true {
                if let event = pending.popFirst() { return event }
                if reachedEnd || Task.isCancelled { return nil }
                let fd = self.fd
                let wakeup = self.wakeup
                let chunk = try await pool.runIfActive {
                    try BlockingIO.readChunk(from: fd, wakeup: wakeup)
                }
                if let chunk {
                    try processor.process(buffer: chunk) { pending.append($0) }
                } else {
                    reachedEnd = true
                    if !Task.isCancelled {
                        try processor.finishProcessing(seenEOF: true) { pending.append($0) }
                    }
                }
            }
        }
    }
}
