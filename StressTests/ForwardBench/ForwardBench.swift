import BenchSupport
import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetSimulators
import NIOCore
import NIOPosix

/// `hostapp-forward-bench`: port-forward figures, measured side by side in one run through ONE
/// KubeSim (in this process, with its pod's loopback echo backend on container port 8080):
///
/// - `hostapp`: a `hostapp serve` process with a cluster on the KubeSim and a service forward;
/// - `kubectl`: a `kubectl port-forward svc/sim 0:8080` process against the same KubeSim;
/// - `direct`: a loopback connection straight to the pod's backend (the ceiling).
///
/// For each: the throughput of one echo transfer of `--bytes` (sent and received back, counted
/// once) and of `--parallel` such transfers at once, and the connect latency (connect until a
/// 1-byte echo returned, a new tunnel each time) over `--connects` samples. Then the `hostapp`
/// daemon's RSS growth after `--churn` more connections through one forward, once they are closed.
/// Prints ONE JSON object.
///
///     hostapp-forward-bench --hostapp PATH [--kubectl kubectl] [--bytes 268435456] [--parallel 8]
///                           [--connects 5000] [--churn 10000]
@main
enum ForwardBench {
    struct Options {
        var hostapp = ""
        var kubectl = "kubectl"
        var bytes = 256 << 20
        var parallel = 8
        var connects = 5_000
        var churn = 10_000

        init(_ arguments: [String]) throws {
            let flags = try Bench.flags(arguments, allowed: ["--hostapp", "--kubectl", "--bytes", "--parallel", "--connects", "--churn"])
            guard let hostapp = flags["--hostapp"] else { throw BenchError("--hostapp PATH is required") }
            self.hostapp = hostapp
            kubectl = flags["--kubectl"] ?? kubectl
            if !kubectl.contains("/") {
                let name = kubectl
                let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
                guard let found = directories.map({ "\($0)/\(name)" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
                    throw BenchError("\(name) is not on PATH; pass --kubectl PATH")
                }
                kubectl = found
            }
            bytes = try Bench.int(flags["--bytes"], "--bytes", default: bytes)
            parallel = try Bench.int(flags["--parallel"], "--parallel", default: parallel)
            connects = try Bench.int(flags["--connects"], "--connects", default: connects)
            churn = try Bench.int(flags["--churn"], "--churn", default: churn)
        }
    }

    static func main() async {
        await Bench.runMain("hostapp-forward-bench") { try await run(try Options(Array(CommandLine.arguments.dropFirst()))) }
    }

    static func run(_ options: Options) async throws -> JSONValue {
        var simOptions = KubeSimOptions()
        simOptions.simulatedPods = 1
        return try await KubeSim.withRunning(options: simOptions) { sim, endpoint in
            let directory = "/tmp/gnfwd-\(getpid())"
            try? FileManager.default.removeItem(atPath: directory)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let kubeconfig = directory + "/sim.kubeconfig"
            try sim.writeKubeconfig(to: kubeconfig, endpoint: endpoint)
            let items = try await sim.list(.pods, namespace: "default")["items"]?.arrayValue ?? []
            guard let pod = items.first(where: { $0["metadata"]?["labels"]?["app"] == "sim" })?["metadata"]?["name"]?.stringValue,
                let directPort = await sim.backendPort(pod: pod, containerPort: 8080)
            else { throw BenchError("KubeSim has no simulated pod with an echo backend") }

            // hostapp: a daemon with one cluster and one service forward.
            let socket = directory + "/hostapp.sock"
            let daemon = try BenchProcess(options.hostapp, ["serve", "--state-dir", directory + "/state", "--socket", socket, "--log-level", "warning"])
            defer { daemon.terminate() }
            let control = try await Bench.connectWhenReady(socket: socket, deadline: .seconds(60))
            _ = try await request(control, ["op": "cluster.register", "cluster": "bench", "kubeconfig": .string(kubeconfig)])
            let started = try await request(control, ["op": "forward.start", "cluster": "bench", "service": "sim", "remote_port": 8080])
            guard let hostappPort = started["local_port"]?.intValue.map(Int.init) else { throw BenchError("forward.start gave no port") }

            // kubectl: port-forward to the same service.
            let kubectl = try BenchProcess(options.kubectl, ["port-forward", "--kubeconfig", kubeconfig, "svc/sim", "0:8080"])
            defer { kubectl.terminate() }
            let line = try await kubectl.waitForLine(prefix: "Forwarding from 127.0.0.1:", timeout: .seconds(60))
            // waitForLine returns what follows the prefix: "<port> -> 8080".
            let rest = line.hasPrefix("Forwarding from 127.0.0.1:") ? Substring(line.dropFirst("Forwarding from 127.0.0.1:".count)) : Substring(line)
            guard let kubectlPort = Int(rest.prefix { $0.isNumber }) else {
                throw BenchError("cannot read kubectl's port from \(line)")
            }

            var peers: [String: JSONValue] = [:]
            for (name, port) in [("direct", directPort), ("kubectl", kubectlPort), ("hostapp", hostappPort)] {
                _ = try await echo(port: port, bytes: 1 << 20)  // warm-up
                let single = try await throughput(port: port, bytes: options.bytes, parallel: 1)
                let parallel = try await throughput(port: port, bytes: options.bytes, parallel: options.parallel)
                let latencies = try await connectLatencies(port: port, count: options.connects)
                peers[name] = [
                    "throughput_mib_s": .double(single), "parallel_throughput_mib_s": .double(parallel),
                    "connect_ms": Bench.percentiles(latencies),
                ]
            }

            // RSS growth of the daemon after churn connections through one forward, once closed.
            _ = try await connectLatencies(port: hostappPort, count: 1_000)
            try await settle(control)
            let rssBefore = Proc.residentKiB(pid: daemon.pid)
            _ = try await connectLatencies(port: hostappPort, count: options.churn)
            try await settle(control)
            let rssAfter = Proc.residentKiB(pid: daemon.pid)

            func ratio(_ key: String, _ a: String, _ b: String) -> JSONValue {
                guard let x = peers[a]?[key]?.doubleValue, let y = peers[b]?[key]?.doubleValue, y > 0 else { return .null }
                return .double((x / y * 100).rounded() / 100)
            }
            return [
                "bench": "forward",
                "bytes": .int(Int64(options.bytes)), "parallel": .int(Int64(options.parallel)),
                "peers": .object(peers),
                "hostapp_vs_kubectl_throughput": ratio("throughput_mib_s", "hostapp", "kubectl"),
                "hostapp_vs_kubectl_parallel_throughput": ratio("parallel_throughput_mib_s", "hostapp", "kubectl"),
                "hostapp_vs_direct_throughput": ratio("throughput_mib_s", "hostapp", "direct"),
                "hostapp_vs_direct_parallel_throughput": ratio("parallel_throughput_mib_s", "hostapp", "direct"),
                "churn_connections": .int(Int64(options.churn)),
                "daemon_rss_growth_kib_after_churn": .int(Int64(rssAfter - rssBefore)),
            ]
        }
    }

    static func request(_ client: ControlClient, _ fields: [String: JSONValue]) async throws -> JSONValue {
        var line = fields
        let id = UUID().uuidString
        line["id"] = .string(id)
        let reply = try JSONParser.parse(try await client.request(JSONValue.object(line).jsonString, id: id, timeout: .seconds(60)))
        guard reply["ok"] == .bool(true), let result = reply["result"] else { throw BenchError("request failed: \(reply.jsonString)") }
        return result
    }

    /// Waits until the daemon's forward has no open connection.
    static func settle(_ control: ControlClient) async throws {
        try await Bench.waitFor("the forward's connections to close", timeout: .seconds(60)) {
            let list = try await request(control, ["op": "forward.list", "cluster": "bench"])
            return list["forwards"]?.arrayValue?.allSatisfy { $0["connections_open"] == 0 } ?? false
        }
    }

    /// MiB/s of `parallel` echo transfers of `bytes` each (payload counted once).
    static func throughput(port: Int, bytes: Int, parallel: Int) async throws -> Double {
        let clock = ContinuousClock()
        let started = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<parallel { group.addTask { _ = try await echo(port: port, bytes: bytes) } }
            try await group.waitForAll()
        }
        let seconds = started.duration(to: clock.now).seconds
        return (Double(bytes * parallel) / 1_048_576 / seconds * 10).rounded() / 10
    }

    /// Sends `bytes` through an echo and reads them all back; checks the count.
    static func echo(port: Int, bytes: Int) async throws {
        let channel = try await connect(port: port)
        try await channel.executeThenClose { inbound, outbound in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    let chunk = ByteBuffer(repeating: 0x5A, count: 64 << 10)
                    var sent = 0
                    while sent < bytes {
                        let size = min(chunk.readableBytes, bytes - sent)
                        try await outbound.write(chunk.getSlice(at: 0, length: size) ?? chunk)
                        sent += size
                    }
                }
                var received = 0
                for try await buffer in inbound {
                    received += buffer.readableBytes
                    if received >= bytes { break }
                }
                guard received >= bytes else { throw BenchError("echo on port \(port) returned \(received) of \(bytes) bytes") }
                try await group.waitForAll()
            }
        }
    }

    /// Connect-until-echo latencies of `count` new connections, one after another.
    static func connectLatencies(port: Int, count: Int) async throws -> [Duration] {
        let clock = ContinuousClock()
        var samples: [Duration] = []
        samples.reserveCapacity(count)
        for _ in 0..<count {
            let started = clock.now
            let channel = try await connect(port: port)
            try await channel.executeThenClose { inbound, outbound in
                try await outbound.write(ByteBuffer(bytes: [1]))
                var iterator = inbound.makeAsyncIterator()
                guard try await iterator.next() != nil else { throw BenchError("no echo on port \(port)") }
            }
            samples.append(started.duration(to: clock.now))
        }
        return samples
    }

    static func connect(port: Int) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
    }
}
