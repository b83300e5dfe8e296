import GuildNetCore
import NIOCore

/// Port-forward state shared by every connection: the open tunnels and connections (for counts and
/// `cutTunnels()`), and the faults (stalled relaying, refused upgrades).
final class TunnelControl: Sendable {
    private struct State {
        var stalled = false
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
        var refuseUpgrades = false
        var tunnels = 0
        var connections: [ObjectIdentifier: any Channel] = [:]
    }

    private let state = LockedValue(State())

    // MARK: - Faults

    /// While stalled, no tunnel relays a byte in either direction (new tunnels included).
    func stall() { state.withLock { $0.stalled = true } }

    func release() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.stalled = false
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    var refusesUpgrades: Bool {
        get { state.withLock { $0.refuseUpgrades } }
        set { state.withLock { $0.refuseUpgrades = newValue } }
    }

    /// Returns at once unless tunnels are stalled; then waits for `release()` or cancellation.
    func pass() async {
        guard state.withLock({ $0.stalled }) else { return }
        let id = state.withLock { state -> Int in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if !state.stalled || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Largest slice of a pod's output relayed as one frame.
    static let relaySliceBytes = 32 * 1024

    /// Relays what the pod side writes, in slices of at most ``relaySliceBytes``, each after
    /// ``pass()`` (so a stall holds it); returns at the pod side's EOF, throws what `inbound` or
    /// `write` throws.
    func relayPodOutput(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>, _ write: (ByteBuffer) async throws -> Void) async throws {
        for try await bytes in inbound {
            var bytes = bytes
            while bytes.readableBytes > 0, let slice = bytes.readSlice(length: min(bytes.readableBytes, Self.relaySliceBytes)) {
                await pass()
                try await write(slice)
            }
        }
    }

    // MARK: - Tunnels and connections

    var openTunnels: Int { state.withLock { $0.tunnels } }
    var openConnections: Int { state.withLock { $0.connections.count } }

    /// Counts a tunnel open while `body` runs.
    func withTunnel<T>(_ body: () async throws -> T) async rethrows -> T {
        state.withLock { $0.tunnels += 1 }
        defer { state.withLock { $0.tunnels -= 1 } }
        return try await body()
    }

    /// Registers an upgraded port-forward connection until it closes.
    func register(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        state.withLock { $0.connections[id] = channel }
        channel.closeFuture.whenComplete { [state] _ in
            _ = state.withLock { $0.connections.removeValue(forKey: id) }
        }
    }

    /// Closes every upgraded port-forward connection; returns how many.
    func cutAll() -> Int {
        let all = state.withLock { Array($0.connections.values) }
        for channel in all { channel.close(promise: nil) }
        return all.count
    }
}
