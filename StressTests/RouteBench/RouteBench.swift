import BenchSupport
import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetKube
import GuildNetSimulators
import Logging

/// `hostapp-route-bench`: the API of ONE KubeSim reached three ways, side by side in one run:
/// - `direct`: a client of the sim's own kubeconfig (TLS, token);
/// - `kubectl_proxy`: `kubectl proxy --port=0` alone (plain HTTP on loopback);
/// - `host_proxy`: a `hostapp serve --proxy-addr` process, `/clusters/bench` over the cluster's
///   chosen route (direct), with the kubeconfig `cluster.kubeconfig` wrote (HTTPS, bearer token).
///
/// Per way: GET of one pod (`--samples`, after a warm-up), a GET of `/api/v1/pods` holding
/// `--pods` pods (median of 3), and the latency of watch events (a pod label patched by the sim,
/// the event's arrival timed on the client; `--watch-samples`). Prints ONE JSON object.
///
///     hostapp-route-bench --hostapp PATH [--kubectl kubectl] [--pods 10000] [--samples 5000] [--watch-samples 5000]
@main
enum RouteBench {
    struct Options {
        var hostapp = ""
        var kubectl = "kubectl"
        var pods = 10_000
        var samples = 5_000
        var watchSamples = 5_000

        init(_ arguments: [String]) throws {
            let flags = try Bench.flags(arguments, allowed: ["--hostapp", "--kubectl", "--pods", "--samples", "--watch-samples"])
            guard let hostapp = flags["--hostapp"] else { throw BenchError("--hostapp PATH is required") }
            self.hostapp = hostapp
            kubectl = flags["--kubectl"] ?? kubectl
            pods = try Bench.int(flags["--pods"], "--pods", default: pods)
            samples = try Bench.int(flags["--samples"], "--samples", default: samples)
            watchSamples = try Bench.int(flags["--watch-samples"], "--watch-samples", default: watchSamples)
        }
    }

    static let logger: Logger = {
        var logger = Logger(label: "route-bench")
        logger.logLevel = .critical
        return logger
    }()

    static func main() async {
        await Bench.runMain("hostapp-route-bench") { try await run(try Options(Array(CommandLine.arguments.dropFirst()))) }
    }

    static func run(_ options: Options) async throws -> JSONValue {
        #if DEBUG
        let build = "debug"
        #else
        let build = "release"
        #endif
        var simOptions = KubeSimOptions()
        simOptions.seedPods = options.pods
        return try await KubeSim.withRunning(options: simOptions) { sim, endpoint in
            let directory = "/tmp/gnroute-\(getpid())"
            try? FileManager.default.removeItem(atPath: directory)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let kubeconfig = directory + "/sim.kubeconfig"
            try sim.writeKubeconfig(to: kubeconfig, endpoint: endpoint)
            let items = try await sim.list(.pods, namespace: "default")["items"]?.arrayValue ?? []
            guard let pod = items.first?["metadata"]?["name"]?.stringValue else { throw BenchError("KubeSim has no pod") }

            // kubectl proxy alone.
            let kubectl = try BenchProcess(options.kubectl, ["proxy", "--port=0", "--kubeconfig", kubeconfig])
            defer { kubectl.terminate() }
            let line = try await kubectl.waitForLine(prefix: "Starting to serve on ", timeout: .seconds(60))
            guard let kubectlPort = Int(line.split(separator: ":").last?.prefix { $0.isNumber } ?? "") else {
                throw BenchError("cannot read kubectl's port from \(line)")
            }
            let kubectlConfig = directory + "/kubectl-proxy.kubeconfig"
            try [
                "apiVersion: v1", "kind: Config", "clusters:", "- name: p", "  cluster:", "    server: http://127.0.0.1:\(kubectlPort)",
                "users:", "- name: u", "  user: {}", "contexts:", "- name: p", "  context: {cluster: p, user: u}", "current-context: p", "",
            ].joined(separator: "\n").write(toFile: kubectlConfig, atomically: true, encoding: .utf8)

            // The host proxy of a hostapp daemon.
            let proxyPort = try await freePort()
            let socket = directory + "/hostapp.sock"
            let daemon = try BenchProcess(
                options.hostapp,
                ["serve", "--state-dir", directory + "/state", "--socket", socket, "--log-level", "warning", "--proxy-addr", "127.0.0.1:\(proxyPort)"])
            defer { daemon.terminate() }
            let control = try await Bench.connectWhenReady(socket: socket, deadline: .seconds(60))
            _ = try await request(control, ["op": "cluster.register", "cluster": "bench", "kubeconfig": .string(kubeconfig)])
            let hostConfig = directory + "/host-proxy.kubeconfig"
            _ = try await request(control, ["op": "cluster.kubeconfig", "cluster": "bench", "path": .string(hostConfig)])

            var ways: [String: JSONValue] = [:]
            for (name, path) in [("direct", kubeconfig), ("kubectl_proxy", kubectlConfig), ("host_proxy", hostConfig)] {
                let client = try KubeClient.make(
                    config: try ResolvedKubeconfig.load(path: path, context: nil).config, options: KubeClientOptions(qps: 100_000, burst: 100_000),
                    logger: logger)
                ways[name] = try await measure(
                    client, sim: sim, pod: pod, samples: options.samples, watchSamples: options.watchSamples)
                try? await client.shutdown()
            }
            return [
                "build": .string(build), "cores": .int(Int64(ProcessInfo.processInfo.activeProcessorCount)), "pods": .int(Int64(options.pods)),
                "ways": .object(ways),
            ]
        }
    }

    static func measure(_ client: KubeClient, sim: KubeSim, pod: String, samples: Int, watchSamples: Int) async throws -> JSONValue {
        let path = "/api/v1/namespaces/default/pods/\(pod)"
        for _ in 0..<20 { _ = try await client.rawGET(path) }
        let clock = ContinuousClock()
        var gets: [Duration] = []
        for _ in 0..<samples {
            let start = clock.now
            _ = try await client.rawGET(path)
            gets.append(start.duration(to: clock.now))
        }
        var lists: [Duration] = []
        var listBytes = 0
        for _ in 0..<3 {
            let start = clock.now
            listBytes = try await client.rawGET("/api/v1/pods").count
            lists.append(start.duration(to: clock.now))
        }
        lists.sort()
        // Watch events: the sim patches one pod's label; the time until the client reads the event.
        let stream = try await client.watch(.pods, namespace: "default", resourceVersion: String(await sim.resourceVersion), allowBookmarks: false)
        var iterator = stream.makeAsyncIterator()
        var events: [Duration] = []
        for index in 0..<watchSamples {
            let start = clock.now
            _ = try await sim.patch(.pods, namespace: "default", name: pod, ["metadata": ["labels": ["bench": .string("v\(index)")]]])
            while let event = try await iterator.next() {
                if event.object["metadata"]?["labels"]?["bench"]?.stringValue == "v\(index)" { break }
            }
            events.append(start.duration(to: clock.now))
        }
        return [
            "get_ms": Bench.percentiles(gets), "list_all_pods_ms": .double(Bench.ms(lists[1])), "list_bytes": .int(Int64(listBytes)),
            "watch_event_ms": Bench.percentiles(events),
        ]
    }

    static func request(_ client: ControlClient, _ fields: [String: JSONValue]) async throws -> JSONValue {
        var line = fields
        let id = UUID().uuidString
        line["id"] = .string(id)
        let reply = try JSONParser.parse(try await client.request(JSONValue.object(line).jsonString, id: id, timeout: .seconds(60)))
        guard reply["ok"] == .bool(true), let result = reply["result"] else { throw BenchError("request failed: \(reply.jsonString)") }
        return result
    }

    /// A loopback port nothing listens on right now.
    static func freePort() async throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw BenchError("bind() failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
