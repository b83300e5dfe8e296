import Foundation
import GuildNetCore
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The real Prometheus server (Debian's, unpacked by scripts/install-test-tools.sh) scrapes a
/// running `hostapp serve` every second. After one cluster is unregistered, Prometheus's own query
/// API shows its series stale (no sample at or after the unregistration, absent from instant
/// queries) while the other cluster's series keep getting samples. Argo CD keeps such series
/// (argo-cd#11707); hostapp must not.
@Suite("real Prometheus scrape", .serialized)
struct PrometheusStalenessEndToEndTests {
    /// A loopback port nothing listens on right now (bound and released).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
            }
        }
        guard bound else { throw TestFailure("bind() failed: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// `/api/v1/query` (instant, now): every result's labels and `[timestamp, value]`.
    static func query(_ port: Int, _ promql: String) async throws -> [JSONValue] {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let encoded = promql.addingPercentEncoding(withAllowedCharacters: allowed) ?? promql
        let reply = try await httpGet(port: port, path: "/api/v1/query?query=\(encoded)")
        let body = try JSONParser.parse(reply.text)
        guard reply.status == 200, body["status"] == "success" else { throw TestFailure("query \(promql): \(reply.status) \(reply.text)") }
        return body["data"]?["result"]?.arrayValue ?? []
    }

    /// The Unix time (seconds) of the newest sample of each series `selector` matches in the last
    /// 10 minutes (a range query: stale markers are not samples).
    static func lastSampleTimes(_ port: Int, _ selector: String) async throws -> [Double] {
        try await query(port, "\(selector)[10m]").compactMap { result in
            result["values"]?.arrayValue?.compactMap { pair -> Double? in
                guard case .array(let items) = pair, items.count == 2 else { return nil }
                switch items[0] {
                case .double(let time): return time
                case .int(let time): return Double(time)
                default: return nil
                }
            }.max()
        }
    }

    @Test("an unregistered cluster's series go stale in Prometheus at the next scrape; the other cluster's continue")
    func unregisteredClusterGoesStale() async throws {
        let prometheusBinary = try #require(
            locatePrometheus(), "prometheus not found (looked at $PROMETHEUS and <package root>/.tools/bin/prometheus): run scripts/install-test-tools.sh")
        let dir = TemporaryDirectory("e2e-prom")
        defer { dir.remove() }
        let daemon = try HostappProcess(stateDirectory: dir.path + "/state", extra: ["--metrics-addr", "127.0.0.1:0"])
        defer { daemon.terminate() }
        let ready = try await daemon.waitUntilReady()
        let metricsPort = try #require(Int(ready["metrics_port"]?.stringValue ?? ""))
        _ = try await daemon.request(["op": "cluster.register", "cluster": "stale-a"])
        _ = try await daemon.request(["op": "cluster.register", "cluster": "stale-b"])

        let config = dir.appending("prometheus.yml")
        try """
        global:
          scrape_interval: 1s
          scrape_timeout: 1s
        scrape_configs:
          - job_name: hostapp
            static_configs:
              - targets: ["127.0.0.1:\(metricsPort)"]
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let webPort = try Self.freePort()
        let prometheus = Process()
        prometheus.executableURL = prometheusBinary
        prometheus.arguments = [
            "--config.file=\(config)", "--storage.tsdb.path=\(dir.appending("tsdb"))", "--web.listen-address=127.0.0.1:\(webPort)",
            "--log.level=warn",
        ]
        let log = dir.appending("prometheus.log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let logHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        defer { try? logHandle.close() }
        prometheus.standardOutput = logHandle
        prometheus.standardError = logHandle
        prometheus.standardInput = FileHandle.nullDevice
        try prometheus.runOrphanSafe()
        defer {
            if prometheus.isRunning {
                prometheus.terminate()
                prometheus.waitUntilExit()
            }
        }
        func prometheusLog() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

        // Both clusters' series are scraped.
        try await eventually("Prometheus has both clusters' series", timeout: .seconds(60)) {
            guard prometheus.isRunning else { throw TestFailure("prometheus exited: \(prometheusLog())") }
            let results = (try? await Self.query(webPort, "hostapp_cluster_db_open")) ?? []
            return Set(results.compactMap { $0["metric"]?["cluster_id"]?.stringValue }) == ["stale-a", "stale-b"]
        }
        let seriesOfA = try await Self.query(webPort, "count({cluster_id=\"stale-a\"})")
        #expect(seriesOfA.first?["value"]?.arrayValue?.last?.stringValue.flatMap(Double.init) ?? 0 >= 3, "\(seriesOfA)")

        let reply = try await daemon.request(["op": "cluster.unregister", "cluster": "stale-a"])
        #expect(reply["ok"] == true)
        // The daemon had removed the series before it replied: no scrape from now on carries them.
        let unregisteredAt = Date().timeIntervalSince1970

        // Stale at the next scrape: gone from instant queries (without waiting out the 5 min lookback).
        try await eventually("stale-a's series are stale in Prometheus", timeout: .seconds(20)) {
            try await Self.query(webPort, "{cluster_id=\"stale-a\"}").isEmpty
        }
        // stale-b keeps being scraped: a sample newer than the unregistration, then another scrape later.
        var newestOfB = 0.0
        try await eventually("stale-b's series continue", timeout: .seconds(20)) {
            newestOfB = try await Self.lastSampleTimes(webPort, "hostapp_cluster_db_open{cluster_id=\"stale-b\"}").max() ?? 0
            return newestOfB > unregisteredAt + 1
        }
        #expect(try await Self.query(webPort, "{cluster_id=\"stale-b\"}").count >= 3)
        // stale-a's last real sample predates the unregistration (scrape timestamps are their start times).
        let lastOfA = try await Self.lastSampleTimes(webPort, "{cluster_id=\"stale-a\"}")
        #expect(!lastOfA.isEmpty, "the samples before the unregistration are kept")
        for time in lastOfA {
            #expect(time <= unregisteredAt + 0.05, "a sample of stale-a at \(time), after the unregistration at \(unregisteredAt)")
        }
        // The host-wide series still go on, and the churn counters saw it.
        let unregistered = try await Self.query(webPort, "hostapp_clusters_unregistered_total")
        #expect(unregistered.first?["value"]?.arrayValue?.last == "1", "\(unregistered)")
        #expect(try await Self.query(webPort, "hostapp_clusters_active").first?["value"]?.arrayValue?.last == "1")
        print(
            "prometheus staleness: stale-a last sample \(lastOfA.max() ?? 0), unregistered at \(unregisteredAt), stale-b newest sample \(newestOfB)"
        )
    }
}
