import GuildNetCore
import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Unix-socket server: many clients at once, socket file mode 0600.
///
/// One instance serves once: after ``shutdown()`` (or the end of ``run(onListening:)``), a new
/// `run` returns immediately. Copies share the shutdown trigger.
public struct ControlSocketServer: Sendable {
    public let path: String
    public let configuration: ControlTransportConfiguration
    let handler: any ControlLineHandler
    let logger: Logger
    private let trigger = ShutdownTrigger()

    public init(path: String, configuration: ControlTransportConfiguration, handler: any ControlLineHandler, logger: Logger) {
        self.path = path
        self.configuration = configuration
        self.handler = handler
        self.logger = logger
    }

    /// Stops a running (or future) ``run(onListening:)``: the listener and every connection are
    /// closed, in-flight handlers are cancelled. Safe to call from any task, any number of times.
    public func shutdown() {
        trigger.fire()
    }

    /// Binds (refusing with `HostError(.io, "…another daemon is listening on PATH…")` if a live server
    /// answers on the path; removing a stale socket file otherwise; refusing if the path exists and is
    /// not a socket), chmods 0600, calls `onListening`, then serves until the calling task is cancelled
    /// or ``shutdown()`` is triggered; on exit closes the listener and every connection (cancelling
    /// in-flight handlers) and removes the socket file. Each connection's handling runs as a child
    /// task of this call.
    ///
    /// The socket is created with the process umask and chmodded right after `bind`; keep its parent
    /// directory private (0700) so nobody can connect in between.
    public func run(onListening: @Sendable () async -> Void = {}) async throws {
        try await Self.clearStaleSocket(at: path)
        let maxLineBytes = configuration.maxLineBytes
        let listener: NIOAsyncChannel<AcceptedConnection, Never>
        do {
            listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.backlog, value: 256)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelOption(.autoRead, value: false)  // until served (AcceptedConnection)
                .bind(unixDomainSocketPath: path, childChannelInitializer: AcceptedConnection.initializer)
        } catch {
            throw HostError(.io, "cannot listen on control socket \(path): \(error)")
        }
        let socketInode = Self.inode(of: path)
        do {
            guard chmod(path, 0o600) == 0 else {
                throw HostError(.io, "cannot chmod control socket \(path) to 0600: \(POSIXErrorText.current())")
            }
            logger.info("control socket listening", metadata: ["path": "\(path)"])
            await onListening()
            try await serve(listener, maxLineBytes: maxLineBytes)
        } catch {
            try? await listener.channel.close()
            removeSocketFile(ifInode: socketInode)
            throw error
        }
        removeSocketFile(ifInode: socketInode)
        logger.info("control socket closed", metadata: ["path": "\(path)"])
    }

    private func serve(_ listener: NIOAsyncChannel<AcceptedConnection, Never>, maxLineBytes: Int) async throws {
        let listenerChannel = listener.channel
        let trigger = self.trigger
        try await listener.executeThenClose { inbound in
            await withDiscardingTaskGroup { group in
                // Closes the listener on shutdown() or cancellation, which ends the accept loop below.
                group.addTask {
                    await trigger.wait()
                    listenerChannel.close(promise: nil)
                }
                do {
                    for try await connection in inbound {
                        group.addTask { await serveConnection(connection, maxLineBytes: maxLineBytes) }
                    }
                } catch is CancellationError {
                    // Shutdown: the listener was closed on purpose.
                } catch {
                    logger.warning("control socket accept loop failed", metadata: ["error": "\(error)"])
                }
                // Listener gone: close every connection (their cancellation handlers close the channels).
                group.cancelAll()
            }
        }
    }

    private func serveConnection(_ accepted: AcceptedConnection, maxLineBytes: Int) async {
        // A client gone before it was served has nothing to say.
        guard
            let connection: NIOAsyncChannel<LineEvent, ByteBuffer> = try? await accepted.take(addHandlers: { pipeline in
                try ConnectionRunner.addLineDecoder(to: pipeline, maxLineBytes: maxLineBytes)
            })
        else { return }
        let channel = connection.channel
        var output = ControlOutput(connectionID: nextConnectionID(), queue: OutputQueue())
        output.peer = await ControlPeer.of(channel)
        var logger = self.logger
        logger[metadataKey: "connection_id"] = "\(output.connectionID)"
        logger.debug("control connection opened")
        let configuration = self.configuration
        let handler = self.handler
        await withTaskCancellationHandler {
            do {
                try await ConnectionRunner.serve(
                    connection, output: output, configuration: configuration, handler: handler, logger: logger)
            } catch {
                logger.debug("control connection closed with error", metadata: ["error": "\(error)"])
            }
        } onCancel: {
            channel.close(promise: nil)
        }
        logger.debug("control connection closed")
    }

    private func removeSocketFile(ifInode socketInode: ino_t?) {
        guard let socketInode, Self.inode(of: path) == socketInode else { return }
        if unlink(path) != 0 {
            logger.warning("cannot remove control socket", metadata: ["path": "\(path)", "error": "\(POSIXErrorText.current())"])
        }
    }

    static func inode(of path: String) -> ino_t? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return info.st_ino
    }

    /// Refuses a live server or a non-socket at `path`; removes a stale socket file.
    static func clearStaleSocket(at path: String) async throws {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            let error = errno
            if error == ENOENT { return }
            throw HostError(.io, "cannot inspect control socket path \(path): \(POSIXErrorText.describe(error))")
        }
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw HostError(.io, "control socket path \(path) exists and is not a socket; refusing to replace it")
        }
        let probe: any Channel
        do {
            probe = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(2))
                .connect(unixDomainSocketPath: path)
                .get()
        } catch let error as IOError where error.errnoCode == ECONNREFUSED || error.errnoCode == ENOENT {
            // Nobody listens: a stale file from a daemon that did not exit cleanly.
            if unlink(path) != 0 && errno != ENOENT {
                throw HostError(.io, "cannot remove stale control socket \(path): \(POSIXErrorText.current())")
            }
            return
        } catch {
            throw HostError(.io, "another daemon may be listening on \(path) (probe failed: \(error)); refusing to start")
        }
        try? await probe.close()
        throw HostError(.io, "another daemon is listening on \(path); refusing to start a second one")
    }
}

/// A one-shot trigger that wakes every waiter; waiting also ends when the waiting task is cancelled.
final class ShutdownTrigger: Sendable {
    private struct State {
        var fired = false
        var nextID: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = LockedValue(State())

    func fire() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.fired = true
            let waiters = Array(state.waiters.values)
            state.waiters.removeAll()
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once ``fire()`` was called or the current task is cancelled.
    func wait() async {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.fired || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }
}

enum POSIXErrorText {
    static func current() -> String { describe(errno) }

    static func describe(_ code: CInt) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return "\(String(cString: text)) (errno \(code))"
    }
}
