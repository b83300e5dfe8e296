import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetSimulators
import TestSupport
import Testing

/// The fault and shutdown phases of ``ParallelClustersEndToEndTests``.
extension ParallelClustersEndToEndTests {
    /// Stalls the last cluster's API server and RethinkDB (a request to it held meanwhile); the
    /// other clusters run three rounds of work that must all succeed; then the faulted cluster,
    /// released, works again.
    static func faultOne(_ sessions: [Session], daemon: HostappProcess) async throws {
        guard let faulted = sessions.last, let kube = faulted.target.kube, let rethink = faulted.target.rethink else { return }
        let healthy = sessions.dropLast()
        await kube.stallReplies()
        await rethink.stallReplies()
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                // A request to the faulted cluster (services: no watch cache answers it), held by its stalled
                // server; its outcome is not the point.
                group.addTask {
                    let client = try await daemon.client()
                    _ = try? await E.call(
                        client, "held", ["op": "k8s.list", "cluster": faulted.cluster, "resource": "services", "namespace": "default"])
                    await client.close()
                }
                try await eventually("a request to \(faulted.name) is held by its stalled API server") { await kube.stalledRequestCount >= 1 }
                try await withThrowingTaskGroup(of: Void.self) { work in
                    for session in healthy {
                        work.addTask {
                            for round in 1...3 { try await Self.writeAndObserve(session, round: round) }
                        }
                    }
                    try await work.waitForAll()
                }
                await kube.releaseReplies()
                await rethink.releaseReplies()
                try await group.waitForAll()
            }
        } catch {
            await kube.releaseReplies()
            await rethink.releaseReplies()
            throw error
        }
        try await Self.writeAndObserve(faulted, round: 1)
    }

    /// Puts every cluster under write load (a connection each), then SIGTERMs the daemon: it exits 0
    /// and every process it had started is gone. Returns those processes' ids and how many writes
    /// each cluster had acknowledged.
    static func terminateUnderLoad(_ sessions: [Session], daemon: HostappProcess) async throws -> (children: [Int32], acknowledged: [String: Int]) {
        let progress = LockedValue<[String: Int]>([:])
        let pid = daemon.process.processIdentifier
        return try await withThrowingTaskGroup(of: Void.self) { group in
            for session in sessions {
                group.addTask {
                    let client = try await daemon.client()
                    var written = 0
                    do {
                        while true {
                            _ = try await E.call(
                                client, "load\(written)",
                                [
                                    "op": "db.put", "cluster": session.cluster, "key": .string(Self.key(session.name, "load-\(written)")),
                                    "value": .int(Int64(written)),
                                ])
                            written += 1
                            let count = written
                            progress.withLock { $0[session.name] = count }
                        }
                    } catch {
                        // The daemon stopped mid-load: the connection ends or the request is refused.
                    }
                    await client.close()
                }
            }
            try await eventually("every cluster under load", timeout: .seconds(30)) {
                progress.withLock { written in sessions.allSatisfy { (written[$0.name] ?? 0) >= 5 } }
            }
            let children = childProcesses(of: pid)
            daemon.terminate()  // SIGTERM
            #expect(try await daemon.waitForExit(timeout: .seconds(60)) == 0, "\(daemon.logLines.suffix(20).joined(separator: "\n"))")
            try await group.waitForAll()
            for session in sessions { await session.client.close() }
            try await eventually("no process started by the daemon is left", timeout: .seconds(20)) {
                children.allSatisfy { !ProcessResources.isRunning(pid: $0) } && childProcesses(of: pid).isEmpty
            }
            return (children, progress.withLock { $0 })
        }
    }
}
