import NIOCore

/// A connection a listener accepted, wrapped for async use only when a handler takes it.
///
/// A listening `NIOAsyncChannel` buffers the connections it accepted; when the task iterating it
/// is cancelled (a forward or a server stopping), the ones not yet delivered are dropped. A
/// dropped child `NIOAsyncChannel` whose writer was never finished stops the process
/// ("Deinited NIOAsyncWriter without calling finish()", apple/swift-nio#2813). Listeners
/// therefore yield this class instead: nothing async exists until ``take(configuration:addHandlers:)``,
/// and a connection nobody took is closed when it is released.
///
/// Child channels must be accepted with `.childChannelOption(.autoRead, false)`: nothing is read
/// until a handler takes the connection. What NIO reads anyway (it drains the socket when the
/// peer half-closes) is held by ``HoldInbound`` and replayed to the handlers ``take(configuration:addHandlers:)``
/// installs, which then turns reading on.
public final class AcceptedConnection: Sendable {
    /// The accepted channel (its pipeline is empty until taken).
    public let channel: any Channel
    private let taken = LockedValue(false)

    /// Wraps `channel`; call from the listener's child channel initializer.
    public init(_ channel: any Channel) {
        self.channel = channel
    }

    /// The listener's child channel initializer: every accepted channel becomes an `AcceptedConnection`.
    @Sendable public static func initializer(_ channel: any Channel) -> EventLoopFuture<AcceptedConnection> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(HoldInbound(), name: HoldInbound.name)
            return AcceptedConnection(channel)
        }
    }

    /// Adds `addHandlers` to the pipeline, wraps the channel for async use and starts reading.
    /// Call once; the caller must then use the result (`executeThenClose`).
    public func take<Inbound: Sendable, Outbound: Sendable>(
        configuration: NIOAsyncChannel<Inbound, Outbound>.Configuration = .init(),
        addHandlers: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void = { _ in }
    ) async throws -> NIOAsyncChannel<Inbound, Outbound> {
        let channel = self.channel
        return try await activate { pipeline in
            try addHandlers(pipeline)
            return try NIOAsyncChannel<Inbound, Outbound>(wrappingChannelSynchronously: channel, configuration: configuration)
        }
    }

    /// Runs `install` on the channel's event loop (it adds the handlers that will serve the
    /// connection), replays what was held to them and starts reading. For servers whose handlers
    /// wrap the channel themselves later (after a TLS handshake and a first request); ``take(configuration:addHandlers:)``
    /// is this plus the wrapping. Call once.
    public func activate<Result: Sendable>(
        _ install: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Result
    ) async throws -> Result {
        taken.withLock { $0 = true }
        let channel = self.channel
        do {
            return try await channel.eventLoop.submit {
                let pipeline = channel.pipeline.syncOperations
                let result = try install(pipeline)
                // Replays what was held to the handlers just added, then leaves the pipeline.
                pipeline.removeHandler(name: HoldInbound.name, promise: nil)
                if channel.isActive { try channel.syncOptions?.setOption(.autoRead, value: true) }
                return result
            }.get()
        } catch {
            // Usually a connection already closed by its peer; either way nobody will serve it.
            channel.close(promise: nil)
            throw error
        }
    }

    deinit {
        if !taken.withLock({ $0 }) { channel.close(promise: nil) }
    }
}

/// Holds the inbound reads, user events and errors of an accepted channel until it is taken,
/// then replays them in order as it leaves the pipeline.
final class HoldInbound: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    static let name = "guildnet.hold-inbound"

    private enum Held {
        case read(NIOAny)
        case readComplete
        case event(Any)
        case error(any Error)
    }

    private var held: [Held] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { held.append(.read(data)) }
    func channelReadComplete(context: ChannelHandlerContext) { held.append(.readComplete) }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) { held.append(.event(event)) }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { held.append(.error(error)) }

    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        let replay = held
        held.removeAll()
        for item in replay {
            switch item {
            case .read(let data): context.fireChannelRead(data)
            case .readComplete: context.fireChannelReadComplete()
            case .event(let event): context.fireUserInboundEventTriggered(event)
            case .error(let error): context.fireErrorCaught(error)
            }
        }
        context.leavePipeline(removalToken: removalToken)
    }
}
