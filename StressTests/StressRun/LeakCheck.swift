import BenchSupport
import GuildNetCore

/// Compares the daemon's counters after the run with the baseline. Exactly back to the baseline:
/// descriptors, listeners, child processes, supervised tasks, cluster actors and their children, open DBs, series
/// naming an unregistered cluster. Threads: at most the baseline. RSS: growth reported, a
/// failure only above the scenario's bound.
struct LeakCheck: Sendable {
    let before: ResourceSnapshot
    let after: ResourceSnapshot
    let rssBoundKiB: Int

    /// Each counter that did not return, as "name before→after".
    var leaks: [String] {
        var leaks: [String] = []
        func exact(_ name: String, _ a: Int, _ b: Int) { if b != a { leaks.append("\(name) \(a)→\(b)") } }
        exact("fds", before.fds, after.fds)
        exact("listeners", before.listeners, after.listeners)
        exact("child_processes", before.children, after.children)
        exact("supervised_tasks", before.supervisedTasks, after.supervisedTasks)
        exact("cluster_actors", before.clusterActors, after.clusterActors)
        exact("cluster_children", before.clusterChildren, after.clusterChildren)
        exact("open_databases", before.openDatabases, after.openDatabases)
        if let series = after.deadClusterSeries, series != (before.deadClusterSeries ?? 0) {
            leaks.append("dead_cluster_series \(before.deadClusterSeries ?? 0)→\(series)")
        }
        if after.threads > before.threads { leaks.append("threads \(before.threads)→\(after.threads)") }
        if after.rssKiB - before.rssKiB > rssBoundKiB {
            leaks.append("rss +\((after.rssKiB - before.rssKiB) / 1024) MiB (bound \(rssBoundKiB / 1024) MiB)")
        }
        return leaks
    }

    /// Descriptors open after that were not open before (to name a descriptor leak).
    var addedDescriptors: [String] {
        var remaining = before.descriptorTargets.reduce(into: [String: Int]()) { $0[$1, default: 0] += 1 }
        var added: [String] = []
        for target in after.descriptorTargets {
            if let count = remaining[target], count > 0 { remaining[target] = count - 1 } else { added.append(target) }
        }
        return Array(added.sorted().prefix(20))
    }

    /// Takes snapshots until two in a row, 500 ms apart, are equal (or `timeout`): the baseline.
    static func stableSnapshot(context: RunContext, control: ControlConnection, timeout: Duration) async throws -> ResourceSnapshot {
        var previous = try await ResourceSnapshot.take(daemon: context.daemon, control: control, liveClusters: context.liveClusters)
        let clock = ContinuousClock()
        let end = clock.now + timeout
        while clock.now < end {
            try await Task.sleep(for: .milliseconds(500))
            let next = try await ResourceSnapshot.take(daemon: context.daemon, control: control, liveClusters: context.liveClusters)
            if next == previous { return next }
            previous = next
        }
        return previous
    }

    /// Polls until no counter leaks (they may take a moment to settle: sockets closing, threads
    /// idling out) and the daemon's trim after the last unregistration ran (so the RSS compared is
    /// what the daemon keeps, not what it is about to give back), or `timeout`; returns the check
    /// on the last snapshot.
    static func settle(
        before: ResourceSnapshot, context: RunContext, control: ControlConnection, timeout: Duration
    ) async throws -> LeakCheck {
        let bound = context.scenario.rssBoundMiB * 1024
        let clock = ContinuousClock()
        let end = clock.now + timeout
        while true {
            let after = try await ResourceSnapshot.take(daemon: context.daemon, control: control, liveClusters: context.liveClusters)
            let check = LeakCheck(before: before, after: after, rssBoundKiB: bound)
            if (check.leaks.isEmpty && !after.memoryTrimPending) || clock.now >= end { return check }
            try await Task.sleep(for: .milliseconds(250))
        }
    }
}
