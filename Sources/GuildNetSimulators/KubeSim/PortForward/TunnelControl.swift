import GuildNetCore
import NIOConcurrencyHelpers
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

    private let state = NIOLockedValueBox(State())

    // MARK: - Faults

    /// While stalled, no tunnel relays a byte in either direction (new tunnels included).
    func stall() { state.withLockedValue { $0.stalled = true } }

    func release() {
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            state.stalled = false
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    var refusesUpgrades: Bool {
        get { state.withLockedValue { $0.refuseUpgrades } }
        set { state.withLockedValue { $0.refuseUpgrades = newValue } }
    }

    /// Returns at once unless tunnels are stalled; then waits for `release()` or cancellation.
    func pass() async {
        guard state.withLockedValue({ $0.stalled }) else { return }
        let id = state.withLockedValue { state -> Int in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLockedValue { state -> Bool in
                    if !state.stalled || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLockedValue { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    // MARK: - Tunnels and connections

    var openTunnels: Int { state.withLockedValue { $0.tunnels } }
    var openConnections: Int { state.withLockedValue { $0.connections.count } }

    /// Counts a tunnel open while `body` runs.
    func withTunnel<T>(_ body: () async throws -> T) async rethrows -> T {
        state.withLockedValue { $0.tunnels += 1 }
        defer { state.withLockedValue { $0.tunnels -= 1 } }
        return try await body()
    }

    /// Registers an upgraded port-forward connection until it closes.
    func register(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        state.withLockedValue { $0.connections[id] = channel }
        channel.closeFuture.whenComplete { [state] _ in
            _ = state.withLockedValue { $0.connections.removeValue(forKey: id) }
        }
    }

    /// Closes every upgraded port-forward connection; returns how many.
    func cutAll() -> Int {
        let all = state.withLockedValue { Array($0.connections.values) }
        for channel in all { channel.close(promise: nil) }
        return all.count
    }
}
