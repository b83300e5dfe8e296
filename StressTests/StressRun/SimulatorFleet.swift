import BenchSupport
import Foundation
import GuildNetCore
import GuildNetSimulators

/// The simulators the clusters share: in-process KubeSims (one simulated pod each, behind Service
/// `sim`, for the forwards) and RethinkSims, plus one RethinkSim run as a separate process
/// (`hostapp sim rethink`) that the `kill-sim` fault kills with SIGKILL.
struct SimulatorFleet: Sendable {
    struct Kube: Sendable {
        let sim: KubeSim
        let kubeconfig: String
    }

    struct Rethink: Sendable {
        let address: String
        /// nil for the separate process.
        let sim: RethinkSim?
    }

    let kubes: [Kube]
    let rethinks: [Rethink]
    let killable: KillableRethink?

    /// The KubeSim of cluster number `index`.
    func kube(for index: Int) -> Kube { kubes[index % kubes.count] }

    /// The RethinkDB of cluster number `index`: every third cluster uses the separate process
    /// when there is one.
    func rethink(for index: Int) -> Rethink {
        if let killable, index % 3 == 2 { return Rethink(address: killable.address, sim: nil) }
        return rethinks[index % rethinks.count]
    }

    /// Runs `body` with `kubeCount` KubeSims and `rethinkCount` RethinkSims serving in child tasks
    /// (and the separate RethinkSim process when `hostapp` is given), then stops them all.
    static func with<T: Sendable>(
        kubeCount: Int, rethinkCount: Int, hostapp: String?, workDirectory: String, spawner: Spawner,
        _ body: @Sendable (SimulatorFleet) async throws -> T
    ) async throws -> T {
        var kubeSims: [KubeSim] = []
        for _ in 0..<kubeCount {
            var options = KubeSimOptions()
            options.simulatedPods = 1
            kubeSims.append(try await KubeSim(options: options))
        }
        var rethinkSims: [RethinkSim] = []
        for _ in 0..<rethinkCount { rethinkSims.append(try await RethinkSim(options: RethinkSimOptions())) }
        let kubes = kubeSims
        let rethinks = rethinkSims
        return try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
            for sim in kubes { group.addTask { try await sim.run() } }
            for sim in rethinks { group.addTask { try await sim.run() } }
            var killable: KillableRethink?
            do {
                var kubeTargets: [Kube] = []
                for (index, sim) in kubes.enumerated() {
                    let endpoint = try await sim.endpoint()
                    let path = workDirectory + "/kubesim-\(index).kubeconfig"
                    try sim.writeKubeconfig(to: path, endpoint: endpoint)
                    kubeTargets.append(Kube(sim: sim, kubeconfig: path))
                }
                var rethinkTargets: [Rethink] = []
                for sim in rethinks {
                    let endpoint = try await sim.endpoint()
                    rethinkTargets.append(Rethink(address: "\(endpoint.host):\(endpoint.port)", sim: sim))
                }
                if let hostapp {
                    killable = try await KillableRethink.start(hostapp: hostapp, workDirectory: workDirectory, spawner: spawner)
                }
                let fleet = SimulatorFleet(kubes: kubeTargets, rethinks: rethinkTargets, killable: killable)
                let result = try await body(fleet)
                await killable?.stop()
                for sim in kubes { await sim.stop() }
                for sim in rethinks { await sim.stop() }
                try await group.waitForAll()
                return result
            } catch {
                await killable?.stop()
                for sim in kubes { await sim.stop() }
                for sim in rethinks { await sim.stop() }
                group.cancelAll()
                throw error
            }
        }
    }
}

/// The RethinkSim in a process of its own (`hostapp sim rethink`): killed with SIGKILL and started
/// again on the same port by the `kill-sim` fault. Its data is in memory, so a restart loses it.
final class KillableRethink: Sendable {
    let hostapp: String
    let workDirectory: String
    let spawner: Spawner
    let port: Int
    private let current: LockedValue<ChildProcess>
    private let generation = LockedValue(0)

    var address: String { "127.0.0.1:\(port)" }

    private init(hostapp: String, workDirectory: String, spawner: Spawner, port: Int, process: ChildProcess) {
        self.hostapp = hostapp
        self.workDirectory = workDirectory
        self.spawner = spawner
        self.port = port
        current = LockedValue(process)
    }

    static func start(hostapp: String, workDirectory: String, spawner: Spawner) async throws -> KillableRethink {
        let (process, port) = try await launch(hostapp: hostapp, port: 0, log: workDirectory + "/rethinksim-0.log", spawner: spawner)
        return KillableRethink(hostapp: hostapp, workDirectory: workDirectory, spawner: spawner, port: port, process: process)
    }

    private static func launch(hostapp: String, port: Int, log: String, spawner: Spawner) async throws -> (ChildProcess, Int) {
        let process = try await ChildProcess.start(
            "hostapp sim rethink", executable: hostapp, arguments: ["sim", "rethink", "--port", String(port)], logPath: log, spawner: spawner)
        let line = try await process.waitForLine(containing: "RethinkSim listening on", timeout: .seconds(60))
        guard let bound = line.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) else {
            throw BenchError("cannot read the port of hostapp sim rethink from \(line)")
        }
        return (process, bound)
    }

    /// SIGKILL, then the same server again on the same port (retrying while the port is not free yet).
    func killAndRestart() async throws {
        let old = current.withLock { $0 }
        old.signal(SIGKILL)
        guard await old.waitForExit(timeout: .seconds(20)) else { throw BenchError("hostapp sim rethink survived SIGKILL") }
        let number = generation.withLock { generation -> Int in
            generation += 1
            return generation
        }
        var lastError: (any Error)?
        for _ in 0..<50 {
            do {
                let (process, _) = try await Self.launch(
                    hostapp: hostapp, port: port, log: workDirectory + "/rethinksim-\(number).log", spawner: spawner)
                current.withLock { $0 = process }
                return
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        throw BenchError("cannot restart hostapp sim rethink on port \(port): \(String(describing: lastError))")
    }

    func stop() async {
        await current.withLock { $0 }.stop()
    }
}
