import Foundation
import GuildNetCore
import Logging

/// One supervised `kubectl proxy --port=0` child process of a cluster's kubectl-proxy route.
///
/// ``run()`` (a child task of the cluster's routes) starts kubectl, reads its port from the
/// `Starting to serve on 127.0.0.1:PORT` line, waits for it to exit and restarts it with capped
/// backoff; ``stop()`` (or cancelling ``run()``) kills it with SIGKILL and returns once it is reaped.
/// kubectl is started by ``ChildProcessLauncher`` (`setpriv --pdeathsig KILL`, forked from a
/// thread that lives as long as the daemon), so the kernel kills it when the daemon dies, even by
/// SIGKILL, and never while the daemon runs. Nothing here blocks a thread: the exit is reported by Foundation's
/// `terminationHandler`, the output read by ``PipeLineReader`` on NIO's event loop.
actor KubectlProxyProcess {
    /// The kubectl binary and the arguments after it.
    let executable: String
    let arguments: [String]
    private let backoff: Backoff
    private let logger: Logger
    /// Called when a restarted kubectl serves on its new port (the owner re-evaluates its route).
    private let onRestartServing: @Sendable () -> Void

    private var port: Int?
    private var pid: Int32?
    private var stopped = false
    private var starts = 0
    private var lastError: String?
    /// Callers of ``waitForPort(timeout:)``; each stream is finished when the port is known or kubectl stops.
    private var portWaiters: [AsyncStream<Void>.Continuation] = []

    init(
        executable: String, arguments: [String], backoff: Backoff = Backoff(initial: .milliseconds(200), cap: .seconds(30)), logger: Logger,
        onRestartServing: @escaping @Sendable () -> Void = {}
    ) {
        self.onRestartServing = onRestartServing
        self.executable = executable
        self.arguments = arguments
        self.backoff = backoff
        self.logger = logger
    }

    /// The proxy's port while kubectl serves, else `nil`.
    var servingPort: Int? { port }
    /// The running kubectl's PID, if one runs.
    var processID: Int32? { pid }
    /// Why the last kubectl run ended or failed to start (kubectl's last stderr line).
    var failure: String? { lastError }
    /// How many times kubectl was started.
    var startCount: Int { starts }

    /// Starts kubectl and restarts it until ``stop()`` or cancellation; returns when it is reaped.
    func run() async {
        var attempt = 0
        let clock = ContinuousClock()
        while !stopped && !Task.isCancelled {
            let startedAt = clock.now
            await runOnce()
            port = nil
            if stopped || Task.isCancelled { break }
            if startedAt.duration(to: clock.now) > .seconds(60) { attempt = 0 }
            let delay = backoff.delay(attempt: attempt)
            attempt += 1
            logger.warning(
                "kubectl proxy exited; restarting in \(delay)",
                metadata: ["event": "route_kubectl_restart", "route": "kubectl-proxy", "reason": .string(lastError ?? "exited")])
            do {
                try await Task.sleep(for: delay)
            } catch {
                break
            }
        }
        stopped = true
        wakePortWaiters()
    }

    /// Kills kubectl (SIGKILL) and ends ``run()``. Idempotent.
    func stop() {
        stopped = true
        if let pid { kill(pid, SIGKILL) }
        wakePortWaiters()
    }

    /// Waits until kubectl serves (its port), kubectl stops, or `timeout` passes.
    func waitForPort(timeout: Duration) async -> Int? {
        if let port { return port }
        if stopped { return nil }
        // A stream, not a continuation: its iteration also ends when the caller is cancelled.
        let (signal, continuation) = AsyncStream<Void>.makeStream()
        portWaiters.append(continuation)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { for await _ in signal {} }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
        continuation.finish()
        return port
    }

    private func wakePortWaiters() {
        let waiters = portWaiters
        portWaiters.removeAll()
        for waiter in waiters { waiter.finish() }
    }

    // MARK: One run

    private func runOnce() async {
        let process = Process()
        ChildProcessLauncher.configure(process, executable: executable, arguments: arguments)
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        let exited = OneShotGate()
        let exitStatus = LockedValue<Int32>(0)
        // Runs after Foundation reaped the process (waitpid): from then on its PID is gone.
        process.terminationHandler = { ended in
            exitStatus.withLock { $0 = ended.terminationStatus }
            exited.open()
        }
        do {
            try await ChildProcessLauncher.run(process)
        } catch {
            lastError = "cannot start \(executable): \(error.localizedDescription)"
            try? stdout.fileHandleForReading.close()
            try? stderr.fileHandleForReading.close()
            return
        }
        // The read ends go to NIO (its own descriptors); Foundation's handles are closed at once.
        let outputs = [(dup(stdout.fileHandleForReading.fileDescriptor), false), (dup(stderr.fileHandleForReading.fileDescriptor), true)]
        try? stdout.fileHandleForReading.close()
        try? stderr.fileHandleForReading.close()
        starts += 1
        let processID = process.processIdentifier
        pid = processID
        logger.info(
            "kubectl proxy started",
            metadata: ["event": "route_kubectl_started", "route": "kubectl-proxy", "pid": .stringConvertible(processID)])
        if stopped { kill(processID, SIGKILL) }

        await withTaskGroup(of: Bool.self) { group in
            for (descriptor, isError) in outputs where descriptor >= 0 {
                group.addTask {
                    await PipeLineReader.read(descriptor: descriptor) { line in await self.consume(line, isError: isError) }
                    return true
                }
            }
            // The exit, waited for even when the task is cancelled (kill, then wait for the reaping).
            await withTaskCancellationHandler {
                await exited.wait()
            } onCancel: {
                kill(processID, SIGKILL)
            }
            // kubectl's last lines (why it exited) are read to the end of its pipes, for at most 2 s.
            group.addTask {
                try? await Task.sleep(for: .seconds(2))
                return false
            }
            var drained = 0
            while drained < outputs.filter({ $0.0 >= 0 }).count, let readerEnded = await group.next(), readerEnded { drained += 1 }
            group.cancelAll()
        }
        self.exited(exitStatus.withLock { $0 })
        withExtendedLifetime(process) {}
        pid = nil
        port = nil
    }

    private func exited(_ status: Int32) {
        if !stopped {
            lastError = lastError ?? "kubectl proxy exited with status \(status)"
        }
        logger.info(
            "kubectl proxy exited", metadata: ["event": "route_kubectl_exited", "route": "kubectl-proxy", "status": .stringConvertible(status)])
    }

    private func consume(_ line: String, isError: Bool) {
        if !isError, let found = Self.servingPort(in: line) {
            port = found
            lastError = nil
            wakePortWaiters()
            if starts > 1 { onRestartServing() }
        } else if isError, !line.isEmpty {
            // kubectl's own error line (it never prints credentials); kept for route.status.
            lastError = String(line.prefix(500))
        }
    }

    /// The port of kubectl's `Starting to serve on 127.0.0.1:PORT` line.
    static func servingPort(in line: String) -> Int? {
        guard let range = line.range(of: "Starting to serve on ") else { return nil }
        let address = line[range.upperBound...].trimmingCharacters(in: .whitespaces)
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), (1...65_535).contains(port)
        else { return nil }
        return port
    }
}

extension KubectlProxyProcess {
    /// The kubectl binary: `route.kubectl_path`, else `kubectl` on PATH.
    static func locateKubectl(_ configured: String?) -> String? {
        if let configured, !configured.isEmpty {
            return FileManager.default.isExecutableFile(atPath: configured) ? configured : nil
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/kubectl"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
