import BenchSupport
import Foundation
import GuildNetCore

/// One run from start to report: the daemon and the simulators up, a warm-up cycle, the baseline,
/// the load (steady clusters, churn, faults, progress) for the scenario's duration, the delivery
/// and watch checks, every cluster unregistered, the counters settled and compared, the daemon
/// stopped (when the run started it).
struct StressRunner: Sendable {
    let scenario: Scenario
    let hostapp: String?
    let socket: String?
    let metricsPort: Int?
    let workDirectory: String

    private struct Outcome: Sendable {
        var leakCheck: LeakCheck?
        var delivery = FeedLedger.Verdict()
        var loadSeconds = 0.0
        var failures: [String] = []
        var failureCount: [String: Int] = [:]
        var faultsInjected: [String: Int] = [:]
        var churnCompleted = 0
    }

    func run() async throws -> StressReport {
        let clock = ContinuousClock()
        let started = clock.now
        let spawner = Spawner()
        let recorder = OpRecorder()
        let daemon: DaemonUnderTest
        if let socket {
            daemon = try await DaemonUnderTest.attach(socket: socket, metricsPort: metricsPort, recorder: recorder)
        } else if let hostapp {
            daemon = try await DaemonUnderTest.spawn(hostapp: hostapp, workDirectory: workDirectory, spawner: spawner)
        } else {
            throw BenchError("no daemon: give --hostapp or --socket")
        }
        FileHandle.standardError.write(
            Data("hostapp-stress: daemon pid \(daemon.pid), socket \(daemon.socket), work directory \(workDirectory)\n".utf8))
        // The daemon stops before the simulators: a cluster left registered (a failed run) then
        // never sees its servers vanish.
        let outcome: Outcome
        let ending: Ending
        do {
            (outcome, ending) = try await SimulatorFleet.with(
                kubeCount: scenario.kubeSimulators, rethinkCount: scenario.rethinkSimulators,
                hostapp: scenario.faults.contains(.killSimulator) ? hostapp : nil, workDirectory: workDirectory, spawner: spawner
            ) { fleet in
                let outcome = try await drive(RunContext(scenario: scenario, daemon: daemon, fleet: fleet, recorder: recorder))
                return (outcome, await Self.stop(daemon))
            }
        } catch {
            await daemon.process?.stop()
            throw error
        }
        let crashed = ending.crashed
        let exitStatus = ending.exitStatus
        let childrenLeft = ending.childrenLeft
        if crashed {
            FileHandle.standardError.write(Data("hostapp-stress: the daemon exited during the run; its last log lines:\n\(daemon.logTail)\n".utf8))
        }
        return StressReport(
            scenario: scenario, wallSeconds: (clock.now - started).seconds, loadSeconds: outcome.loadSeconds, recorder: recorder,
            delivery: outcome.delivery, faultsInjected: outcome.faultsInjected, churnCompleted: outcome.churnCompleted,
            leakCheck: crashed ? nil : outcome.leakCheck, crashed: crashed, exitStatus: exitStatus, childrenLeft: childrenLeft,
            failures: outcome.failures, failureCount: outcome.failureCount)
    }

    private struct Ending: Sendable {
        var crashed: Bool
        var exitStatus: Int32?
        var childrenLeft = 0
    }

    /// Whether the daemon crashed; when the run started it, SIGTERM, its exit status, and how many
    /// of its child processes outlived it.
    private static func stop(_ daemon: DaemonUnderTest) async -> Ending {
        guard daemon.isAlive else { return Ending(crashed: true) }
        guard let process = daemon.process else { return Ending(crashed: false) }
        let children = ProcFacts.children(of: daemon.pid)
        await process.stop(grace: .seconds(60))
        _ = try? await Bench.waitFor("the daemon's children to exit", timeout: .seconds(20), interval: .milliseconds(50)) {
            children.allSatisfy { kill($0, 0) != 0 }
        }
        return Ending(crashed: false, exitStatus: process.process.terminationStatus, childrenLeft: children.filter { kill($0, 0) == 0 }.count)
    }

    private func drive(_ context: RunContext) async throws -> Outcome {
        let daemon = context.daemon
        let spawner = Spawner()
        return try await ControlConnection.with(socket: daemon.socket, recorder: context.recorder) { control in
            // Warm-up: one cluster through every subsystem once, so lazily created pools exist
            // before the baseline.
            _ = try await ChurnCycle.run(cycle: 0, name: "warmup", context: context)
            let before = try await LeakCheck.stableSnapshot(context: context, control: control, timeout: .seconds(30))
            let clock = ContinuousClock()
            let loadStart = clock.now
            let delivery = LockedValue(FeedLedger.Verdict())
            let clusters = ClusterDirectory()
            let finished = LockedValue(false)
            let nextCycle = LockedValue(0)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<scenario.clusters {
                    group.addTask {
                        do {
                            let verdict = try await SteadyLoad.run(index: index, context: context, clusters: clusters)
                            delivery.withLock { $0.add(verdict) }
                        } catch {
                            context.fail("cluster_task_failed", "\(SteadyLoad.name(index)): \(error)")
                        }
                    }
                }
                for _ in 0..<max(1, scenario.churnParallelism) {
                    group.addTask {
                        while daemon.isAlive {
                            let cycle = nextCycle.withLock { next -> Int? in
                                guard next < scenario.churnCycles else { return nil }
                                next += 1
                                return next
                            }
                            guard let cycle else { break }
                            // Cycles are spread over the duration, so clusters come and go under load and faults.
                            let due = scenario.duration * (Double(cycle - 1) / Double(max(1, scenario.churnCycles)))
                            while daemon.isAlive, clock.now - loadStart < due { try? await Task.sleep(for: .milliseconds(100)) }
                            do {
                                let verdict = try await ChurnCycle.run(cycle: cycle, name: "churn-\(cycle)", context: context)
                                delivery.withLock { $0.add(verdict) }
                            } catch {
                                context.fail("churn_task_failed", "churn-\(cycle): \(error)")
                            }
                            context.churnCycleDone()
                        }
                    }
                }
                group.addTask {
                    await FaultInjector(context: context, clusters: clusters, spawner: spawner, workDirectory: workDirectory).run()
                }
                group.addTask {
                    await ProgressLine(context: context, started: loadStart).run { finished.withLock { $0 } }
                }
                group.addTask {
                    // The load stops once the duration passed and every churn cycle ran (or the daemon died).
                    while daemon.isAlive
                        && (clock.now - loadStart < scenario.duration || context.churnCompleted < scenario.churnCycles)
                    {
                        try? await Task.sleep(for: .milliseconds(200))
                    }
                    context.stop()
                }
                // Everything but the progress line ends after the stop; then the progress line.
                var remaining = scenario.clusters + max(1, scenario.churnParallelism) + 2
                while remaining > 0, try await group.next() != nil { remaining -= 1 }
                finished.withLock { $0 = true }
                try await group.waitForAll()
            }
            let loadSeconds = (clock.now - loadStart).seconds
            var outcome = Outcome(
                delivery: delivery.withLock { $0 }, loadSeconds: loadSeconds, failures: context.failures, failureCount: context.failureCount,
                faultsInjected: context.faultsInjected, churnCompleted: context.churnCompleted)
            if daemon.isAlive {
                outcome.leakCheck = try await LeakCheck.settle(before: before, context: context, control: control, timeout: scenario.settleTimeout)
            }
            outcome.failures = context.failures
            outcome.failureCount = context.failureCount
            return outcome
        }
    }
}
