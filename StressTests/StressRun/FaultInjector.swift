import BenchSupport
import Foundation
import GuildNetCore

/// Injects the enabled faults one after another, every `faultInterval`, while the load runs.
/// A fault that cannot apply in this run (no state directory for `db-locked`, no `hostapp` binary
/// for `kill-sim`) is skipped and counted as such.
struct FaultInjector: Sendable {
    let context: RunContext
    let clusters: ClusterDirectory
    let spawner: Spawner
    let workDirectory: String

    func run() async {
        let kinds = context.scenario.faults.sorted()
        guard !kinds.isEmpty else { return }
        var round = 0
        await context.pause(context.scenario.faultInterval)
        while !context.shouldStop {
            let kind = kinds[round % kinds.count]
            do {
                if try await inject(kind, round: round) {
                    context.injected(kind)
                } else {
                    context.recorder.count("faults_skipped.\(kind.rawValue)")
                }
            } catch {
                context.recorder.count("faults_failed.\(kind.rawValue)")
                FileHandle.standardError.write(Data("hostapp-stress: fault \(kind.rawValue) could not be injected: \(error)\n".utf8))
            }
            round += 1
            await context.pause(context.scenario.faultInterval)
        }
    }

    /// Injects `kind`; false when it does not apply to this run.
    private func inject(_ kind: FaultKind, round: Int) async throws -> Bool {
        let fleet = context.fleet
        let kube = fleet.kubes[round % fleet.kubes.count].sim
        switch kind {
        case .apiStall:
            await kube.stallReplies()
            try? await Task.sleep(for: .milliseconds(1500))
            await kube.releaseReplies()
        case .cutStreams:
            _ = await kube.cutWatchStreams()
            _ = await kube.cutTunnels()
        case .expired:
            await kube.restart()
        case .rethinkDrop:
            guard let sim = fleet.rethinks[round % fleet.rethinks.count].sim else { return false }
            _ = await sim.dropConnections()
        case .dbLocked:
            return try await lockDatabase(round: round)
        case .killSimulator:
            guard let killable = fleet.killable else { return false }
            try await killable.killAndRestart()
            // The restarted server has no tables: recreate those of the clusters on it.
            for (index, cluster) in clusters.all where fleet.rethink(for: index).sim == nil {
                await cluster.createTables()
            }
        }
        return true
    }

    /// Another process (the sqlite3 CLI) holds an exclusive lock on a steady cluster's `local.db`
    /// for 1.5 s while the cluster's DB loop writes.
    private func lockDatabase(round: Int) async throws -> Bool {
        guard let state = context.daemon.stateDirectory, let sqlite = Self.sqlite3 else { return false }
        let open = clusters.all
        guard !open.isEmpty else { return false }
        let (_, cluster) = open[round % open.count]
        let database = state + "/clusters/\(cluster.name)/local.db"
        guard FileManager.default.fileExists(atPath: database) else { return false }
        let process = try await ChildProcess.start(
            "sqlite3", executable: sqlite, arguments: [database], logPath: workDirectory + "/sqlite3-\(round).log", withInput: true, spawner: spawner)
        try process.input?.write(contentsOf: Data("BEGIN EXCLUSIVE;\nSELECT 'locked';\n".utf8))
        _ = try await process.waitForLine(containing: "locked", timeout: .seconds(20))
        try? await Task.sleep(for: .milliseconds(1500))
        try process.input?.write(contentsOf: Data("COMMIT;\n.quit\n".utf8))
        try? process.input?.close()
        if await !process.waitForExit(timeout: .seconds(20)) { await process.stop() }
        return true
    }

    static var sqlite3: String? {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = String(directory) + "/sqlite3"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
