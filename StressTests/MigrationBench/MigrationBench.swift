import Foundation
import GuildNetCore
import GuildNetMigration

/// `hostapp-migration-bench`: generates a legacy DB of N keys across C clusters (default 1,000,000
/// across 100), runs `migrate-db --all --commit` in process and prints one JSON object: seconds,
/// keys/s and peak RSS (VmHWM). Usage: hostapp-migration-bench [--keys N] [--clusters C] [--dir DIR] [--keep]
@main
struct MigrationBench {
    static func main() throws {
        var keys = 1_000_000
        var clusterCount = 100
        var directory: String?
        var keep = false
        var arguments = CommandLine.arguments.dropFirst()
        while let argument = arguments.popFirst() {
            switch argument {
            case "--keys": keys = arguments.popFirst().flatMap { Int($0) } ?? keys
            case "--clusters": clusterCount = arguments.popFirst().flatMap { Int($0) } ?? clusterCount
            case "--dir": directory = arguments.popFirst()
            case "--keep": keep = true
            default:
                FileHandle.standardError.write(Data("usage: hostapp-migration-bench [--keys N] [--clusters C] [--dir DIR] [--keep]\n".utf8))
                exit(2)
            }
        }
        let stateDirectory = directory ?? "/tmp/gn-migbench-\(getpid())"
        try? FileManager.default.removeItem(atPath: stateDirectory)
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        defer { if !keep { try? FileManager.default.removeItem(atPath: stateDirectory) } }

        // Each cluster carries 9 fixed records (clusters, settings, 2 credentials, 2 services, job,
        // log, audit); the rest are cluster-kv keys.
        let perCluster = max(0, keys / clusterCount - 9)
        let fixture = LegacyFixture(
            clusters: (0..<clusterCount).map { "cluster-\($0)" }, bulkKeysPerCluster: perCluster,
            masterKey: "bench-master-key")
        let generateStart = ContinuousClock.now
        try fixture.write(to: stateDirectory + "/guildnet.sqlite")
        let generateSeconds = seconds(ContinuousClock.now - generateStart)
        let rssBefore = memoryField("VmRSS")

        var options = MigrationOptions(stateDirectory: stateDirectory, cluster: nil, commit: true)
        options.quiet()
        options.operatorName = "bench"
        options.commandLine = ["hostapp-migration-bench"]
        options.environment["GUILDNET_MASTER_KEY"] = "bench-master-key"
        let usageBefore = usage()
        let start = ContinuousClock.now
        let report = try Migration.run(options)
        let elapsed = seconds(ContinuousClock.now - start)
        let usageAfter = usage()
        let migrated = report.plan.migratedRecords
        let result: JSONValue = .object([
            "legacy_keys": .int(Int64(report.plan.totalRecords)),
            "migrated_keys": .int(Int64(migrated)),
            "clusters": .int(Int64(report.clusters.count)),
            "seconds": .double((elapsed * 1000).rounded() / 1000),
            "keys_per_second": .int(Int64(Double(migrated) / max(elapsed, 0.001))),
            "peak_rss_mb": .double(((memoryField("VmHWM") ?? 0) / 1024 * 10).rounded() / 10),
            "rss_before_migration_mb": .double(((rssBefore ?? 0) / 1024 * 10).rounded() / 10),
            "fixture_seconds": .double((generateSeconds * 1000).rounded() / 1000),
            "user_seconds": .double(((usageAfter.user - usageBefore.user) * 1000).rounded() / 1000),
            "system_seconds": .double(((usageAfter.system - usageBefore.system) * 1000).rounded() / 1000),
            "minor_faults": .int(Int64(usageAfter.minorFaults - usageBefore.minorFaults)),
            "target_seconds": .int(60),
            "target_peak_rss_mb": .int(200),
        ])
        print(result.jsonString)
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// CPU seconds (user, system) and minor page faults of the process so far.
    static func usage() -> (user: Double, system: Double, minorFaults: Int) {
        var value = rusage()
        getrusage(RUSAGE_SELF.rawValue, &value)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return (seconds(value.ru_utime), seconds(value.ru_stime), Int(value.ru_minflt))
    }

    /// A `kB` field of /proc/self/status.
    static func memoryField(_ name: String) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            return Double(line.split(separator: " ").dropFirst().first ?? "")
        }
        return nil
    }
}
