import ArgumentParser
import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetSettings

/// `hostapp bootstrap --from guildnet.config [--cluster NAME] [--dry-run]`: registers a cluster
/// from GuildNet's join bundle through the running daemon (op `cluster.bootstrap`). `--dry-run`
/// reads the bundle locally and prints what would be written, secrets redacted.
struct BootstrapCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bootstrap",
        abstract: "Register a cluster from a guildnet.config join bundle (rolled back completely if a step fails).",
        discussion: """
            The daemon stores the bundle's kubeconfig (0600) and its cluster, tailscale, hostapp and ui fields as the
            cluster's settings, then warms its Kubernetes and RethinkDB connections. docs/operations.md lists the fields.
            """
    )

    @Option(name: .long, help: "The guildnet.config join bundle.")
    var from: String

    @Option(name: .long, help: "Cluster name (default: the bundle's cluster.name).")
    var cluster: String?

    @Flag(name: .long, help: "Print what would be written (secrets redacted); change nothing.")
    var dryRun = false

    @Option(name: .long, help: "Control socket path (default: <state-dir>/hostapp.sock, else $HOSTAPP_SOCKET).")
    var socket: String?

    @Option(name: .long, help: "State directory of the daemon (to find its socket).")
    var stateDir: String?

    @Option(name: .long, help: "Seconds to wait for the reply.")
    var timeout: Int = 120

    mutating func run() async throws {
        let path = URL(fileURLWithPath: from).standardizedFileURL.path
        if dryRun {
            do {
                let bundle = try JoinBundle.read(path: path)
                guard let name = cluster ?? bundle.clusterName else {
                    throw HostError(.missingField, "the bundle \(path) has no cluster.name; pass --cluster NAME")
                }
                guard case .object(var plan) = bundle.redactedPlan(cluster: name) else { return }
                plan["dry_run"] = true
                print(HumanOutput.render(["ok": true, "result": .object(plan)]), terminator: "")
                return
            } catch let error as HostError {
                FileHandle.standardError.write(Data("error \(error.code.rawValue): \(error.message)\n".utf8))
                throw ExitCode(1)
            }
        }
        var request: [String: JSONValue] = ["id": "bootstrap", "op": "cluster.bootstrap", "path": .string(path)]
        if let cluster { request["cluster"] = .string(cluster) }
        let reply = try await target().send(request, id: "bootstrap", timeout: timeout)
        let parsed = try? JSONParser.parse(reply)
        print(parsed.map(HumanOutput.render) ?? String(decoding: reply, as: UTF8.self), terminator: parsed == nil ? "\n" : "")
        if parsed?["ok"] != .bool(true) { throw ExitCode(1) }
    }

    private func target() throws -> DaemonTarget {
        try DaemonTarget.choose(
            socket: socket, stateDir: stateDir, missing: "which daemon? Give --state-dir DIR, --socket PATH, or set HOSTAPP_SOCKET (or use --dry-run)")
    }
}
