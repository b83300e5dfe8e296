import Foundation
import GuildNetCore
import NIOCore
import NIOPosix

/// A client for the control socket, used by `hostapp ctl`, tests and the benchmark.
///
/// Sends may run concurrently with receives (pipelining). Received lines are delivered to the oldest
/// waiting ``receive()``, except that a line whose JSON `"id"` matches a pending ``request(_:id:timeout:)``
/// goes to that request. Lines nobody waits for are buffered for later `receive()` calls; while a
/// `request` is pending the client keeps reading and, past 65,536 buffered lines, drops the oldest.
public actor ControlClient {
    private let channel: any Channel
    private let inbox: ClientInbox

    private init(channel: any Channel, inbox: ClientInbox) {
        self.channel = channel
        self.inbox = inbox
    }

    deinit {
        channel.close(promise: nil)
    }

    /// Connects to the control socket at `path`.
    /// - Parameter maxLineBytes: the longest accepted reply line; a longer one makes `receive()` throw
    ///   ``HostError`` `.lineTooLong` once (the connection stays usable).
    /// - Throws: ``HostError`` `.io` when nobody listens or the path is unusable.
    public static func connect(path: String, maxLineBytes: Int = 64 << 20) async throws -> ControlClient {
        let inbox = ClientInbox()
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(10))
                .channelOption(.autoRead, value: false)
                .channelOption(.allowRemoteHalfClosure, value: true)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers(
                            ByteToMessageHandler(LineFrameDecoder(maxLineBytes: maxLineBytes)),
                            ClientInboundHandler(inbox: inbox)
                        )
                    }
                }
                .connect(unixDomainSocketPath: path)
                .get()
        } catch let error as IOError {
            throw HostError(.io, "cannot connect to control socket \(path): \(Self.describe(errno: error.errnoCode))")
        } catch {
            throw HostError(.io, "cannot connect to control socket \(path): \(error)")
        }
        return ControlClient(channel: channel, inbox: inbox)
    }

    /// A connect failure in plain words (the daemon's absence is the usual cause).
    static func describe(errno code: CInt) -> String {
        switch code {
        case ENOENT: "no such socket file (no daemon serves this path)"
        case ECONNREFUSED: "the socket file exists but nothing listens on it (the daemon is not running)"
        case EACCES: "permission denied (the socket belongs to another user)"
        case ENOTSOCK: "the path is not a socket"
        default: String(cString: strerror(code))
        }
    }

    /// Sends one line ("\n" appended). Returns once the bytes were handed to the kernel.
    public func send(_ line: [UInt8]) async throws {
        var buffer = channel.allocator.buffer(capacity: line.count + 1)
        buffer.writeBytes(line)
        buffer.writeInteger(UInt8(ascii: "\n"))
        try await write(buffer)
    }

    /// Sends one line ("\n" appended).
    public func send(_ line: String) async throws {
        try await send(Array(line.utf8))
    }

    /// Writes `bytes` exactly as given, with no newline appended (for framing tests and tools).
    public func sendRaw(_ bytes: [UInt8]) async throws {
        try await write(channel.allocator.buffer(bytes: bytes))
    }

    /// Closes the write side (the server sees EOF, answers what is in flight, then closes); receiving
    /// continues to work.
    public func finishSending() async throws {
        do {
            try await channel.close(mode: .output)
        } catch {
            throw HostError(.io, "cannot close the control connection's write side: \(error)")
        }
    }

    /// Next line received (without "\n"); nil at EOF.
    public func receive() async throws -> [UInt8]? {
        try await inbox.next(matching: nil, channel: channel)
    }

    /// Sends `line`, then receives until a line whose JSON `"id"` equals `id` arrives and returns it.
    /// Other lines (stream events, replies to other requests) are kept for later `receive()` calls.
    /// - Throws: ``HostError`` `.timeout` after `timeout`; `.io` if the connection ends first.
    public func request(_ line: String, id: String, timeout: Duration = .seconds(30)) async throws -> [UInt8] {
        try await send(line)
        let inbox = self.inbox
        let channel = self.channel
        return try await withDeadline(timeout, "reply to control request \(id)") {
            guard let reply = try await inbox.next(matching: id, channel: channel) else {
                throw HostError(.io, "control connection closed before the reply to request \(id)")
            }
            return reply
        }
    }

    /// Closes the connection; pending and later receives return nil.
    public func close() async {
        try? await channel.close()
    }

    private func write(_ buffer: ByteBuffer) async throws {
        do {
            try await channel.writeAndFlush(buffer)
        } catch {
            throw HostError(.io, "cannot write to control connection: \(error)")
        }
    }
}

/// Feeds decoded lines into the client's inbox and reads only while the inbox wants more.
private final class ClientInboundHandler: ChannelInboundHandler {
    typealias InboundIn = LineEvent

    let inbox: ClientInbox

    init(inbox: ClientInbox) {
        self.inbox = inbox
    }

    func channelActive(context: ChannelHandlerContext) {
        context.read()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inbox.deliver(.event(unwrapInboundIn(data)))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if inbox.wantsMoreAfterReadComplete() {
            context.read()
        }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            inbox.deliver(.end(failure: nil))
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        inbox.deliver(.end(failure: nil))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        inbox.deliver(.end(failure: String(describing: error)))
        context.close(promise: nil)
    }
}

/// Received lines waiting for `receive()`/`request()`, with waiters matched by JSON id.
final class ClientInbox: Sendable {
    enum Input {
        case event(LineEvent)
        /// The connection ended; with the error's description when it failed.
        case end(failure: String?)
    }

    private enum Outcome {
        case event(LineEvent)
        case end
        case failed(String)
        case cancelled
    }

    private struct Waiter {
        let id: UInt64
        let matchID: String?
        let continuation: CheckedContinuation<Outcome, Never>
    }

    private struct State {
        var buffered = CircularBuffer<LineEvent>()
        var waiters: [Waiter] = []
        var ended = false
        var failure: String?
        var readPaused = false
        var nextWaiterID: UInt64 = 0
    }

    /// Reading pauses at this many buffered lines when no request is pending.
    static let pauseThreshold = 1024
    /// While a request is pending, the oldest lines beyond this are dropped.
    static let hardLimit = 65_536

    private let state = LockedValue(State())

    func deliver(_ input: Input) {
        var resume: (CheckedContinuation<Outcome, Never>, Outcome)?
        var resumeAll: [CheckedContinuation<Outcome, Never>] = []
        var endOutcome = Outcome.end
        state.withLock { state in
            switch input {
            case .event(let event):
                if let index = Self.waiterIndex(for: event, in: state.waiters) {
                    let waiter = state.waiters.remove(at: index)
                    resume = (waiter.continuation, .event(event))
                } else {
                    state.buffered.append(event)
                    if state.buffered.count > Self.hardLimit { _ = state.buffered.popFirst() }
                }
            case .end(let failure):
                guard !state.ended else { return }
                state.ended = true
                state.failure = failure
                if let failure { endOutcome = .failed(failure) }
                resumeAll = state.waiters.map(\.continuation)
                state.waiters.removeAll()
            }
        }
        if let (continuation, outcome) = resume { continuation.resume(returning: outcome) }
        for continuation in resumeAll { continuation.resume(returning: endOutcome) }
    }

    /// Called on the event loop after a read burst: whether to issue another read.
    func wantsMoreAfterReadComplete() -> Bool {
        state.withLock { state in
            let wantsMore = state.buffered.count < Self.pauseThreshold || state.waiters.contains { $0.matchID != nil }
            state.readPaused = !wantsMore
            return wantsMore
        }
    }

    /// The next line (the first buffered line whose id matches, when `matchID` is given).
    func next(matching matchID: String?, channel: any Channel) async throws -> [UInt8]? {
        let waiterID = state.withLock { state -> UInt64 in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let outcome = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
                let (immediate, resumeReading) = state.withLock { state -> (Outcome?, Bool) in
                    var immediate: Outcome?
                    if let index = Self.bufferedIndex(matching: matchID, in: state.buffered) {
                        immediate = .event(state.buffered.remove(at: index))
                    } else if state.ended {
                        immediate = state.failure.map { .failed($0) } ?? .end
                    } else if Task.isCancelled {
                        immediate = .cancelled
                    } else {
                        state.waiters.append(Waiter(id: waiterID, matchID: matchID, continuation: continuation))
                    }
                    let wantsMore = state.buffered.count < Self.pauseThreshold || matchID != nil
                    let resumeReading = state.readPaused && wantsMore && !state.ended
                    if resumeReading { state.readPaused = false }
                    return (immediate, resumeReading)
                }
                if resumeReading { channel.read() }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiters.firstIndex(where: { $0.id == waiterID }) else { return nil }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(returning: .cancelled)
        }
        switch outcome {
        case .event(.line(let line)):
            return line
        case .event(.oversized(let byteCount)):
            throw HostError(.lineTooLong, "a received control line of \(byteCount) bytes exceeded the client's limit and was discarded")
        case .end:
            return nil
        case .failed(let failure):
            throw HostError(.io, "control connection failed: \(failure)")
        case .cancelled:
            throw CancellationError()
        }
    }

    private static func waiterIndex(for event: LineEvent, in waiters: [Waiter]) -> Int? {
        guard !waiters.isEmpty else { return nil }
        if case .line(let line) = event, waiters.contains(where: { $0.matchID != nil }), let id = replyID(of: line),
            let index = waiters.firstIndex(where: { $0.matchID == id })
        {
            return index
        }
        return waiters.firstIndex { $0.matchID == nil }
    }

    private static func bufferedIndex(matching matchID: String?, in buffered: CircularBuffer<LineEvent>) -> CircularBuffer<LineEvent>.Index? {
        guard let matchID else { return buffered.startIndex == buffered.endIndex ? nil : buffered.startIndex }
        return buffered.firstIndex { event in
            if case .line(let line) = event { return replyID(of: line) == matchID }
            return false
        }
    }

    private struct IDProbe: Decodable {
        var id: JSONValue?
    }

    /// The `"id"` member of a JSON object line (a string, or an integer rendered as decimal).
    static func replyID(of line: [UInt8]) -> String? {
        guard let probe = try? JSONDecoder().decode(IDProbe.self, from: Data(line)), let id = probe.id else { return nil }
        switch id {
        case .string(let value): return value
        case .int(let value): return String(value)
        default: return nil
        }
    }
}
