import ArgumentParser
import Dispatch
import Foundation
import GuildNetSimulators

/// `hostapp sim`: simulated servers for tests, the stress tool and demos.
struct SimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Run a simulated server (for tests, stress runs and demos).",
        subcommands: [SimKubeCommand.self, SimRethinkCommand.self]
    )
}

/// `hostapp sim kube --kubeconfig-out PATH [--pods N] [--token T]`: runs KubeSim until SIGINT/SIGTERM;
/// SIGHUP simulates an API server restart (connections cut, watch cache rebuilt).
struct SimKubeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kube",
        abstract: "Run KubeSim, a simulated Kubernetes API server over HTTPS that kubectl accepts."
    )

    enum Credential: String, ExpressibleByArgument, CaseIterable {
        case token
        case clientCertificate = "client-certificate"
    }

    @Option(name: .customLong("kubeconfig-out"), help: "Where to write the kubeconfig (mode 0600).")
    var kubeconfigOut: String

    @Option(
        help:
            "Pods of a simulated ReplicaSet in namespace default (sim-xxxxx, Running, Service sim), backed by loopback servers: port 80 answers HTTP with the pod's name, 8080 echoes."
    )
    var pods: Int = 0

    @Option(help: "The bearer token to accept (random by default).")
    var token: String?

    @Option(help: "Port to listen on (0 picks a free port).")
    var port: Int = 0

    @Option(help: "Credentials written into the kubeconfig: token or client-certificate.")
    var user: Credential = .token

    func validate() throws {
        guard pods >= 0 else { throw ValidationError("--pods must be >= 0") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        if let token, token.isEmpty { throw ValidationError("--token must not be empty") }
    }

    func run() async throws {
        var options = KubeSimOptions()
        options.simulatedPods = pods
        options.port = port
        if let token { options.token = token }
        let sim = try await KubeSim(options: options)
        let kubeconfigOut = self.kubeconfigOut
        let credential: KubeSimUser = user == .token ? .token : .clientCertificate
        try await sim.servingUntilSignal { sim, endpoint in
            try sim.writeKubeconfig(to: kubeconfigOut, endpoint: endpoint, user: credential)
            // Unbuffered write: the line must reach a pipe reader at once.
            FileHandle.standardOutput.write(Data("KubeSim listening on \(endpoint.url)\n".utf8))
        }
    }
}

/// `hostapp sim rethink [--port N] [--user U] [--password P]`: runs RethinkSim until SIGINT/SIGTERM;
/// SIGHUP simulates a server restart (connections closed, tables unavailable for `--restart-unavailable-ms`).
struct SimRethinkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rethink",
        abstract: "Run RethinkSim, an in-memory RethinkDB server speaking the V1_0 wire protocol (SCRAM-SHA-256 users)."
    )

    @Option(help: "Port to listen on (0 picks a free port).")
    var port: Int = 0

    @Option(help: "The user to accept.")
    var user: String = "admin"

    @Option(help: "The user's password (empty by default, like RethinkDB's admin).")
    var password: String = ""

    @Option(name: .customLong("batch-size"), help: "Rows per response before paging with CONTINUE.")
    var batchSize: Int = 1000

    @Option(
        name: .customLong("restart-unavailable-ms"),
        help: "After SIGHUP (a simulated restart), how long tables answer OP_FAILED \"primary replica … not available\".")
    var restartUnavailableMilliseconds: Int = 1000

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard !user.isEmpty else { throw ValidationError("--user must not be empty") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be >= 1") }
        guard restartUnavailableMilliseconds >= 0 else { throw ValidationError("--restart-unavailable-ms must be >= 0") }
    }

    func run() async throws {
        var options = RethinkSimOptions()
        options.port = port
        options.users = [user: password]
        options.batchSize = batchSize
        options.restartUnavailableFor = .milliseconds(restartUnavailableMilliseconds)
        let sim = try await RethinkSim(options: options)
        try await sim.servingUntilSignal { _, endpoint in
            // Unbuffered write: the line must reach a pipe reader at once.
            FileHandle.standardOutput.write(Data("RethinkSim listening on \(endpoint.host):\(endpoint.port)\n".utf8))
        }
    }
}
