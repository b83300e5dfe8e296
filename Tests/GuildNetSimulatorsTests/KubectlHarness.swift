import Foundation
import GuildNetCore
import GuildNetSimulators
import TestSupport

/// Runs the real kubectl (`$KUBECTL`, else the first `kubectl` on PATH) against a KubeSim with a
/// kubeconfig the sim wrote and a fresh HOME (kubectl caches discovery per host:port under
/// $HOME/.kube/cache).
struct Kubectl: Sendable {
    let home: TemporaryDirectory
    let kubeconfigPath: String
    let executable: String

    /// The kubectl to run; throws a message saying how to provide one when there is none.
    static func executable() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let explicit = environment["KUBECTL"], !explicit.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: explicit) else {
                throw HostError(.invalidRequest, "KUBECTL=\(explicit) is not an executable file")
            }
            return explicit
        }
        for directory in (environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/kubectl"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw HostError(
            .invalidRequest,
            "kubectl is not on PATH: the KubeSim referee tests run the real kubectl; install it or set KUBECTL=/path/to/kubectl"
        )
    }

    init(sim: KubeSim, endpoint: KubeSimEndpoint, user: KubeSimUser = .token) throws {
        executable = try Self.executable()
        home = TemporaryDirectory("kubesim")
        kubeconfigPath = home.appending("kubeconfig")
        try sim.writeKubeconfig(to: kubeconfigPath, endpoint: endpoint, user: user)
    }

    private func fullArguments(_ arguments: [String]) -> [String] {
        ["HOME=\(home.path)", "KUBECONFIG=", executable, "--kubeconfig", kubeconfigPath] + arguments
    }

    /// Runs kubectl to completion; merged stdout+stderr.
    func run(_ arguments: String...) async throws -> ProcessResult {
        try await runProcess(URL(fileURLWithPath: "/usr/bin/env"), fullArguments(arguments), input: [])
    }

    func run(arguments: [String], input: String = "") async throws -> ProcessResult {
        try await runProcess(URL(fileURLWithPath: "/usr/bin/env"), fullArguments(arguments), input: Array(input.utf8))
    }

    /// Starts kubectl with streaming stdout collected into `output`; terminate with `stop()`.
    func start(_ arguments: String...) throws -> StreamingProcess {
        try StreamingProcess(URL(fileURLWithPath: "/usr/bin/env"), fullArguments(arguments))
    }

    /// Starts kubectl with extra environment entries (`NAME=value`).
    func start(environment: [String], arguments: [String]) throws -> StreamingProcess {
        try StreamingProcess(URL(fileURLWithPath: "/usr/bin/env"), environment + fullArguments(arguments))
    }

    func cleanUp() { home.remove() }
}

/// A child process whose output is collected as it arrives.
final class StreamingProcess: Sendable {
    private let pid: Int32
    private let collected = LockedValue<[UInt8]>([])
    private let status = LockedValue<Int32?>(nil)

    init(_ executable: URL, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        let collected = self.collected
        PipeDrain.start(pipe.fileHandleForReading) { data in
            collected.withLock { $0.append(contentsOf: data) }
        }
        let status = self.status
        process.terminationHandler = { finished in
            let code = finished.terminationStatus
            status.withLock { $0 = code }
        }
        try process.runOrphanSafe()
        pid = process.processIdentifier
    }

    var output: String { String(decoding: collected.withLock { $0 }, as: UTF8.self) }

    /// The exit status once the process ended.
    var exitCode: Int32? { status.withLock { $0 } }

    /// Sends SIGTERM to this process (only the one this object started).
    func stop() {
        if exitCode == nil { kill(pid, SIGTERM) }
    }

    /// Sends `signal` to this process (only the one this object started), while it runs.
    func send(_ signal: Int32) {
        if exitCode == nil { kill(pid, signal) }
    }
}
