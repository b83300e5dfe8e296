import Foundation
import GuildNetCore
import GuildNetSimulators
import TestSupport

/// One cluster of the parallel e2e suite: its name and kubeconfig, plus its own KubeSim and
/// RethinkSim, or neither against a real cluster (`HOSTAPP_E2E_KUBECONFIGS`).
struct ParallelClusterTarget: Sendable {
    let index: Int
    let name: String
    let kubeconfig: String
    let kube: KubeSim?
    let rethink: RethinkSim?
    let rethinkAddress: String?

    var isSimulated: Bool { kube != nil }
    /// The route `route.probe` must pick: the last simulated cluster's server refuses direct
    /// clients; nil for a real cluster (any healthy route).
    var expectedRoute: JSONValue? {
        guard let kube else { return nil }
        return kube.options.requireForwardedFor ? "kubectl-proxy" : "direct"
    }

    /// Whether `route` (a `route.status` reply) is the route this cluster must use.
    func isExpected(route: JSONValue) -> Bool {
        guard let expectedRoute else { return route["route"] != .null && route["route"] != nil }
        return route["route"] == expectedRoute
    }

    static let rethinkPassword = "parallel-rethink-pw-3c9a"

    /// The kubeconfigs of `HOSTAPP_E2E_KUBECONFIGS` (colon-separated paths), or nil when unset.
    static var realKubeconfigs: [String]? {
        guard let value = ProcessInfo.processInfo.environment["HOSTAPP_E2E_KUBECONFIGS"], !value.isEmpty else { return nil }
        return value.split(separator: ":").map(String.init)
    }

    /// The cluster settings the suite registers with: its RethinkSim, a fast forward health check,
    /// and `$KUBECTL` as the route fallback when set.
    var settings: JSONValue {
        var settings: [String: JSONValue] = ["forward.health_interval_ms": 200]
        if let rethinkAddress {
            settings["rethinkdb.address"] = .string(rethinkAddress)
            settings["rethinkdb.user"] = "app"
            settings["rethinkdb.password"] = .string(Self.rethinkPassword)
        }
        if let kubectl = ProcessInfo.processInfo.environment["KUBECTL"], !kubectl.isEmpty {
            settings["route.kubectl_path"] = .string(kubectl)
        }
        return .object(settings)
    }

    /// Runs `body` with one target per real kubeconfig when `HOSTAPP_E2E_KUBECONFIGS` is set, else
    /// with `count` simulated clusters, each on its own KubeSim (one simulated pod behind the
    /// `sim` service) and RethinkSim (table `test.jobs`), all served until `body` returns.
    static func withTargets(count: Int, directory: String, _ body: @escaping @Sendable ([ParallelClusterTarget]) async throws -> Void) async throws {
        if let kubeconfigs = realKubeconfigs {
            let targets = kubeconfigs.enumerated().map { index, path in
                ParallelClusterTarget(index: index, name: "real-\(index)", kubeconfig: path, kube: nil, rethink: nil, rethinkAddress: nil)
            }
            try await body(targets)
            return
        }
        try await nest(index: 0, count: count, directory: directory, targets: [], body)
    }

    private static func nest(
        index: Int, count: Int, directory: String, targets: [ParallelClusterTarget], _ body: @escaping @Sendable ([ParallelClusterTarget]) async throws -> Void
    ) async throws {
        guard index < count else {
            try await body(targets)
            return
        }
        var kubeOptions = KubeSimOptions()
        kubeOptions.simulatedPods = 1
        // The last cluster's API server refuses direct clients: its route falls back to a
        // `kubectl proxy` the daemon runs as its child.
        kubeOptions.requireForwardedFor = index == count - 1
        var rethinkOptions = RethinkSimOptions()
        rethinkOptions.users = ["admin": "", "app": Self.rethinkPassword]
        let kubeSettings = kubeOptions
        try await RethinkSim.withRunning(options: rethinkOptions) { rethink, rethinkEndpoint in
            try await rethink.createTable("jobs", database: "test")
            try await KubeSim.withRunning(options: kubeSettings) { kube, kubeEndpoint in
                let name = "par-" + String(UnicodeScalar(UInt8(97 + index)))
                let kubeconfig = directory + "/\(name).kubeconfig"
                try kube.writeKubeconfig(to: kubeconfig, endpoint: kubeEndpoint)
                let target = ParallelClusterTarget(
                    index: index, name: name, kubeconfig: kubeconfig, kube: kube, rethink: rethink,
                    rethinkAddress: "\(rethinkEndpoint.host):\(rethinkEndpoint.port)")
                try await nest(index: index + 1, count: count, directory: directory, targets: targets + [target], body)
            }
        }
    }
}

/// Processes whose parent is `pid`, read from /proc/<pid>/stat (the field after the command).
func childProcesses(of pid: Int32) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { entry -> Int32? in
        guard let child = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8) else { return nil }
        // The command is in parentheses and may contain spaces: the fields after the last ')' are
        // the state, then the parent pid.
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 1, Int32(fields[1]) == pid else { return nil }
        return child
    }
}

/// The `sqlite3` CLI on PATH; the suite fails without it (scripts/install-test-tools.sh installs it).
func locateSqlite3() throws -> URL {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for directory in path.split(separator: ":") {
        let candidate = String(directory) + "/sqlite3"
        if FileManager.default.isExecutableFile(atPath: candidate) { return URL(fileURLWithPath: candidate) }
    }
    throw TestFailure("sqlite3 not found on PATH; run scripts/install-test-tools.sh")
}

/// Every key of a cluster's `local.db`, read by the real sqlite3 CLI (read-only).
func sqliteKeys(database: String) async throws -> [String] {
    let result = try await runProcess(try locateSqlite3(), ["-readonly", database, "SELECT key FROM kv ORDER BY key;"])
    guard result.exitCode == 0 else { throw TestFailure("sqlite3 on \(database) exited \(result.exitCode): \(result.output)") }
    return result.output.split(separator: "\n").map(String.init)
}
