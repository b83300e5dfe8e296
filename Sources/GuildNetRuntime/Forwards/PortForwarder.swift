import GuildNetCore
import GuildNetKube
import Logging
import NIOCore
import NIOPosix

/// How a forward checks and restarts itself (from the cluster's `forward.*` settings).
public struct ForwardOptions: Sendable {
    /// Time between two probes of an active forward.
    public var healthInterval: Duration = .seconds(10)
    /// Longest a probe may take.
    public var probeTimeout: Duration = .seconds(5)
    /// Consecutive failed checks tolerated before the forward gives up (`failed`).
    public var maxRestarts: Int = 5
    /// Delay before each re-check of a failing forward.
    public var backoff = Backoff(initial: .milliseconds(200), multiplier: 2, cap: .seconds(10), jitter: 0.5)

    public init() {}
}

/// One forward: a listener on 127.0.0.1, one tunnel per accepted connection (so a slow
/// connection never stalls another), and a health check that re-resolves and restarts the
/// forward within its cluster's scope. ``run()`` is the forward's whole life, a child task of
/// its ``ClusterForwards``; everything it opens is closed when it returns.
actor PortForwarder {
    nonisolated let spec: ForwardSpec
    nonisolated let id: String
    nonisolated let localPort: Int
    nonisolated let localAddress = "127.0.0.1"

    private let listener: NIOAsyncChannel<AcceptedConnection, Never>
    private let client: KubeClient
    private let resolver: ForwardResolver
    private let options: ForwardOptions
    private let logger: Logger
    private let traffic = LockedValue(Traffic())
    private var state = ForwardState.starting
    private var resolved: ForwardResolver.Resolved
    private var restarts = 0
    private var lastError: HostError?
    private var hasRun = false
    private let stopRequests: AsyncStream<Void>
    private let stopContinuation: AsyncStream<Void>.Continuation
    /// Opens when everything the forward opened is closed.
    private let finished = OneShotGate()

    /// Counters bumped on the data path (a lock, not the actor: one bump per read).
    struct Traffic: Sendable {
        var connectionsOpen = 0
        var connectionsTotal = 0
        var connectionFailures = 0
        var bytesIn = 0
        var bytesOut = 0

        /// Adds the cumulative counters of `other` (not its open connections).
        mutating func accumulate(_ other: Traffic) {
            connectionsTotal += other.connectionsTotal
            connectionFailures += other.connectionFailures
            bytesIn += other.bytesIn
            bytesOut += other.bytesOut
        }
    }

    /// Resolves the target (so a bad request fails before anything listens), then binds the listener.
    ///
    /// - Throws: what ``ForwardResolver/resolve(_:avoiding:)`` throws, `forward_port_in_use`, `io_error`.
    static func open(
        spec: ForwardSpec, client: KubeClient, resolver: ForwardResolver, options: ForwardOptions, logger: Logger
    ) async throws -> PortForwarder {
        let resolved = try await resolver.resolve(spec)
        let listener = try await bind(port: spec.localPort)
        guard let port = listener.channel.localAddress?.port else {
            try? await listener.channel.close()
            throw HostError(.io, "the forward's listener has no local port")
        }
        return PortForwarder(
            spec: spec, listener: listener, localPort: port, resolved: resolved, client: client, resolver: resolver, options: options,
            logger: logger)
    }

    private init(
        spec: ForwardSpec, listener: NIOAsyncChannel<AcceptedConnection, Never>, localPort: Int,
        resolved: ForwardResolver.Resolved, client: KubeClient, resolver: ForwardResolver, options: ForwardOptions, logger: Logger
    ) {
        self.logger = logger
        self.spec = spec
        self.id = spec.id
        self.listener = listener
        self.localPort = localPort
        self.resolved = resolved
        self.client = client
        self.resolver = resolver
        self.options = options
        (stopRequests, stopContinuation) = AsyncStream<Void>.makeStream()
    }

    private static func bind(port: Int) async throws -> NIOAsyncChannel<AcceptedConnection, Never> {
        do {
            return try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 256)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelOption(.recvAllocator, value: PortForwardTunnel.receiveAllocator)
                .childChannelOption(.autoRead, value: false)  // until served (AcceptedConnection)
                .bind(host: "127.0.0.1", port: port, childChannelInitializer: AcceptedConnection.initializer)
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw HostError(.forwardPortInUse, "local port \(port) on 127.0.0.1 is already in use (by another forward or another process)")
        } catch {
            throw HostError(.io, "cannot listen on 127.0.0.1:\(port): \(error)")
        }
    }

    // MARK: Life

    /// Serves connections and checks health until ``stop()``, cancellation, or giving up.
    func run() async {
        hasRun = true
        if state == .starting || state == .active {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.acceptConnections() }
                group.addTask { await self.checkHealth() }
                group.addTask { for await _ in self.stopRequests {} }
                _ = await group.next()
                group.cancelAll()
            }
        }
        try? await listener.channel.close()
        if state != .failed { state = .stopped }
        finished.open()
    }

    /// Stops the forward and waits until its listener, tunnels and connections are closed, whether
    /// or not ``run()`` ever started (a job queued to a stopping cluster may never run).
    func shutdown() async {
        requestStop()
        guard hasRun else {
            if state != .failed { state = .stopped }
            try? await listener.channel.close()
            finished.open()
            return
        }
        await finished.wait()
    }

    /// Asks ``run()`` to end. Safe from any context; idempotent.
    nonisolated func requestStop() { stopContinuation.finish() }

    private func acceptConnections() async {
        do {
            try await listener.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { connections in
                    for try await connection in inbound {
                        connections.addTask { await self.serve(connection) }
                    }
                }
            }
        } catch {
            if !Task.isCancelled { fail(HostError.wrapping(error, as: .io)) }
        }
    }

    /// Carries one local connection through its own tunnel.
    private nonisolated func serve(_ accepted: AcceptedConnection) async {
        // A connection its client closed before it was served has nothing to carry.
        guard let connection: NIOAsyncChannel<ByteBuffer, ByteBuffer> = try? await accepted.take() else { return }
        traffic.withLock {
            $0.connectionsOpen += 1
            $0.connectionsTotal += 1
        }
        defer { traffic.withLock { $0.connectionsOpen -= 1 } }
        let traffic = self.traffic
        // Each NIOAsyncChannel is used exactly once (`executeThenClose`): by the relay, or here.
        let tunnel: PortForwardTunnel
        do {
            tunnel = try await openTunnel()
        } catch {
            try? await connection.executeThenClose { _, _ in }
            await connectionFailed(error)
            return
        }
        do {
            try await tunnel.relay(connection) { fromPod, toPod in
                traffic.withLock {
                    $0.bytesIn += fromPod
                    $0.bytesOut += toPod
                }
            }
        } catch {
            await connectionFailed(error)
        }
    }

    private func connectionFailed(_ error: any Error) {
        if Task.isCancelled || error is CancellationError { return }
        traffic.withLock { $0.connectionFailures += 1 }
        lastError = HostError.wrapping(error, as: .k8sPortForwardFailed)
    }

    /// A tunnel to the current pod; when that pod is gone, a service forward re-resolves once.
    private func openTunnel() async throws -> PortForwardTunnel {
        let target = resolved
        do {
            return try await client.openPortForward(namespace: spec.namespace, pod: target.pod, port: target.port)
        } catch let error as HostError where error.code == .k8sNotFound {
            try await podWentAway(target.pod, error)
            let next = resolved
            return try await client.openPortForward(namespace: spec.namespace, pod: next.pod, port: next.port)
        }
    }

    /// The pod `gone` answered 404: a pod forward fails with `pod_gone`; a service forward picks
    /// another pod (one restart, counted once however many connections noticed).
    private func podWentAway(_ gone: String, _ error: HostError) async throws {
        switch spec.target {
        case .pod(let name):
            let failure = HostError(.podGone, "pod \(spec.namespace)/\(name) was deleted; start a new forward (a service forward follows its pods)")
            fail(failure)
            throw failure
        case .service:
            guard resolved.pod == gone else { return }
            let next = try await resolver.resolve(spec, avoiding: gone)
            guard resolved.pod == gone else { return }
            resolved = next
            restarts += 1
            lastError = HostError(.podGone, "pod \(spec.namespace)/\(gone) went away; the service now reaches \(next.pod)")
        }
    }

    private func fail(_ error: HostError) {
        guard state != .stopped, state != .failed else { return }
        state = .failed
        lastError = error
        logger.error(
            "port-forward \(id) failed and stopped listening: \(error.message); check the target with k8s.get, then forward.start again",
            metadata: ["event": "forward_failed", "forward": .string(id), "code": .string(error.code.rawValue)])
        stopContinuation.finish()
    }

    // MARK: Health

    /// Probes the target through a tunnel every ``ForwardOptions/healthInterval``; a failing
    /// forward re-resolves its target after a backoff, and gives up after
    /// ``ForwardOptions/maxRestarts`` consecutive failures.
    private func checkHealth() async {
        var consecutiveFailures = 0
        while !Task.isCancelled {
            do {
                if consecutiveFailures > 0 {
                    let next = try await resolver.resolve(spec, avoiding: nil)
                    if next != resolved { resolved = next }
                }
                let target = resolved
                let tunnel = try await client.openPortForward(namespace: spec.namespace, pod: target.pod, port: target.port)
                try await tunnel.probe(timeout: options.probeTimeout)
                consecutiveFailures = 0
                if state == .starting || state == .restarting { state = .active }
            } catch {
                if Task.isCancelled || error is CancellationError { return }
                let failure = HostError.wrapping(error, as: .k8sPortForwardFailed)
                if case .pod(let name) = spec.target, failure.code == .k8sNotFound {
                    fail(HostError(.podGone, "pod \(spec.namespace)/\(name) was deleted; start a new forward (a service forward follows its pods)"))
                    return
                }
                consecutiveFailures += 1
                lastError = failure
                guard consecutiveFailures <= options.maxRestarts else {
                    fail(HostError(failure.code, "gave up after \(options.maxRestarts) restarts: \(failure.message)", transient: false))
                    return
                }
                state = .restarting
                restarts += 1
            }
            let pause = consecutiveFailures > 0 ? options.backoff.delay(attempt: consecutiveFailures - 1) : options.healthInterval
            do {
                try await Task.sleep(for: pause)
            } catch {
                return
            }
        }
    }

    // MARK: Status

    func status() -> ForwardStatus {
        let counts = traffic.withLock { $0 }
        return ForwardStatus(
            id: id, spec: spec, localAddress: localAddress, localPort: localPort, state: state, pod: resolved.pod, podPort: resolved.port,
            connectionsOpen: counts.connectionsOpen, connectionsTotal: counts.connectionsTotal, bytesIn: counts.bytesIn,
            bytesOut: counts.bytesOut, restarts: restarts, lastError: lastError)
    }

    /// The data-path counters (for metrics).
    nonisolated var trafficCounts: Traffic { traffic.withLock { $0 } }
}
