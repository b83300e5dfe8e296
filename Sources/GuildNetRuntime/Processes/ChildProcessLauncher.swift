import Foundation
import NIOPosix

/// Starts child processes (kubectl, and in tests the daemon itself) so that the kernel kills them
/// when their parent dies, even by SIGKILL.
///
/// On Linux the child runs under `setpriv --pdeathsig KILL` (the signal survives setpriv's exec of
/// the real program, which keeps its PID). `PR_SET_PDEATHSIG` fires when the *thread* that forked
/// the child exits, not the process: a child spawned from a Swift concurrency or libdispatch
/// worker thread is killed when that worker retires after a few idle seconds. So the fork always
/// happens on the launcher's own thread, which lives as long as the process.
public enum ChildProcessLauncher {
    /// The one thread every child is forked from. Immutable and process-wide on purpose (like
    /// NIO's singletons): it must outlive every child, so nothing may shut it down. One thread,
    /// so the descriptors Foundation's run loop keeps per spawning thread exist once.
    private static let thread: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        return pool
    }()

    /// Starts the launcher's thread and its run loop ahead of the first child (the daemon calls
    /// it at start), so the descriptors they hold for the process's life are part of any baseline
    /// taken before the first child instead of looking like that child's leak.
    public static func prepare() async throws {
        try await thread.runIfActive { _ = RunLoop.current }
    }

    /// `executable arguments`, wrapped in `setpriv --pdeathsig KILL --` where setpriv is installed.
    public static func command(executable: String, arguments: [String]) -> (executable: String, arguments: [String]) {
        #if os(Linux)
        for setpriv in ["/usr/bin/setpriv", "/bin/setpriv"] where FileManager.default.isExecutableFile(atPath: setpriv) {
            return (setpriv, ["--pdeathsig", "KILL", "--", executable] + arguments)
        }
        #endif
        return (executable, arguments)
    }

    /// Sets `process` to run `executable arguments` under ``command(executable:arguments:)``.
    public static func configure(_ process: Process, executable: String, arguments: [String]) {
        let (command, commandArguments) = command(executable: executable, arguments: arguments)
        process.executableURL = URL(fileURLWithPath: command)
        process.arguments = commandArguments
    }

    /// Runs `process` (configured by the caller) from a thread that outlives it.
    public static func run(_ process: Process) async throws {
        let handle = ProcessHandle(process)
        try await perform { try handle.process.run() }
    }

    /// Runs `work` on the launcher's thread, for callers that build and start a `Process` there
    /// in one go (configured with ``configure(_:executable:arguments:)``).
    public static func perform<Result: Sendable>(_ work: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await thread.runIfActive(work)
    }

    /// ``run(_:)`` for synchronous callers (blocks the calling thread until the fork is done).
    public static func runBlocking(_ process: Process) throws {
        let handle = ProcessHandle(process)
        try thread.runIfActive(eventLoop: MultiThreadedEventLoopGroup.singleton.any()) {
            try handle.process.run()
        }.wait()
    }

    /// Carries a `Process` to the pool thread. Safe because the caller hands the process over
    /// and does not touch it until `run()` returned (the pool call completes before the caller
    /// resumes), so the object is never used by two threads at once.
    private struct ProcessHandle: @unchecked Sendable {
        let process: Process
        init(_ process: Process) { self.process = process }
    }
}
