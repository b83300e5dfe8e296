import BenchSupport
import GuildNetCore

/// What every task of a run shares: the scenario, the daemon, the simulators, the recorder, and
/// the run's bookkeeping (which clusters exist, failures found, when to stop).
final class RunContext: Sendable {
    let scenario: Scenario
    let daemon: DaemonUnderTest
    let fleet: SimulatorFleet
    let recorder: OpRecorder
    private let state = LockedValue(State())

    private struct State {
        var stopLoad = false
        var registered: Set<String> = []
        var everRegistered: Set<String> = []
        var failures: [String] = []
        var failureCount: [String: Int] = [:]
        var churnCompleted = 0
        var steadyReady = 0
        var faultsInjected: [String: Int] = [:]
    }

    init(scenario: Scenario, daemon: DaemonUnderTest, fleet: SimulatorFleet, recorder: OpRecorder) {
        self.scenario = scenario
        self.daemon = daemon
        self.fleet = fleet
        self.recorder = recorder
    }

    var shouldStop: Bool { state.withLock { $0.stopLoad } }
    func stop() { state.withLock { $0.stopLoad = true } }

    func registered(_ id: String) {
        state.withLock { state in
            state.registered.insert(id)
            state.everRegistered.insert(id)
        }
    }

    func unregistered(_ id: String) { state.withLock { _ = $0.registered.remove(id) } }
    var liveClusters: Set<String> { state.withLock { $0.registered } }
    var everRegistered: Set<String> { state.withLock { $0.everRegistered } }

    /// A failed check (lost event, wrong final state, missing final event): the run fails.
    func fail(_ kind: String, _ detail: String) {
        state.withLock { state in
            state.failureCount[kind, default: 0] += 1
            if state.failures.count < 50 { state.failures.append("\(kind): \(detail)") }
        }
    }

    var failures: [String] { state.withLock { $0.failures } }
    var failureCount: [String: Int] { state.withLock { $0.failureCount } }

    func churnCycleDone() { state.withLock { $0.churnCompleted += 1 } }
    var churnCompleted: Int { state.withLock { $0.churnCompleted } }
    func steadyClusterReady() { state.withLock { $0.steadyReady += 1 } }
    var steadyReady: Int { state.withLock { $0.steadyReady } }

    func injected(_ fault: FaultKind) { state.withLock { $0.faultsInjected[fault.rawValue, default: 0] += 1 } }
    var faultsInjected: [String: Int] { state.withLock { $0.faultsInjected } }

    /// Sleeps `duration` unless the load stops first (checked every 100 ms).
    func pause(_ duration: Duration) async {
        let clock = ContinuousClock()
        let end = clock.now + duration
        while clock.now < end, !shouldStop {
            try? await Task.sleep(for: min(.milliseconds(100), end - clock.now))
        }
    }
}
