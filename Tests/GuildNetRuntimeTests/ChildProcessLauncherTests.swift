import Foundation
import GuildNetCore
import GuildNetRuntime
import TestSupport
import Testing

#if os(Linux)
import Glibc

/// `PR_SET_PDEATHSIG` is tied to the thread that forked the child: a kubectl proxy forked from a
/// worker thread that later retired was killed while the daemon ran (the route then restarted it
/// every few idle seconds). The launcher forks from threads that never retire.
@Suite("ChildProcessLauncher")
struct ChildProcessLauncherTests {
    /// Starts `/bin/sleep 600` with the parent-death signal from a thread that exits right after;
    /// `viaLauncher` forks through the launcher's long-lived thread instead of that thread itself.
    static func spawnFromShortLivedThread(viaLauncher: Bool) async throws -> (Process, tid: Int32) {
        let process = Process()
        ChildProcessLauncher.configure(process, executable: "/bin/sleep", arguments: ["600"])
        let outcome = LockedValue<Result<Int32, any Error>?>(nil)
        let handle = UnsafeProcessBox(process)
        let thread = Thread {
            // This thread's ID: /proc/thread-self links to /proc/<pid>/task/<tid>.
            let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")) ?? ""
            let tid = Int32(link.split(separator: "/").last ?? "") ?? -1
            do {
                if viaLauncher { try ChildProcessLauncher.runBlocking(handle.process) } else { try handle.process.run() }
                // The thread may exit only once setpriv has set the signal (it then execs sleep):
                // a thread gone before that would leave nothing to test.
                let deadline = Date().addingTimeInterval(30)
                let comm = "/proc/\(handle.process.processIdentifier)/comm"
                while (try? String(contentsOfFile: comm, encoding: .utf8)) != "sleep\n", Date() < deadline { usleep(1_000) }
                outcome.withLock { $0 = .success(tid) }
            } catch {
                outcome.withLock { $0 = .failure(error) }
            }
        }
        thread.start()
        try await eventually("the thread forked") { outcome.withLock { $0 } != nil }
        let tid = try #require(outcome.withLock { $0 }).get()
        try await eventually("the forking thread exited") {
            !FileManager.default.fileExists(atPath: "/proc/self/task/\(tid)")
        }
        return (process, tid)
    }

    @Test("a child started by the launcher outlives the thread that asked for it; a child forked by that thread does not")
    func childOutlivesTheAskingThread() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "setpriv (util-linux) is missing")
        let (direct, _) = try await Self.spawnFromShortLivedThread(viaLauncher: false)
        let (launched, _) = try await Self.spawnFromShortLivedThread(viaLauncher: true)
        defer { if launched.isRunning { launched.terminate() } }
        // The kernel's behaviour the launcher exists for: the parent-death signal came when the thread exited.
        try await eventually("the directly forked child got SIGKILL") { !direct.isRunning }
        #expect(direct.terminationReason == .uncaughtSignal && direct.terminationStatus == SIGKILL)
        // The launched child's forking thread is alive: it keeps running.
        #expect(launched.isRunning)
        #expect(kill(launched.processIdentifier, 0) == 0)
    }
}

/// Hands a `Process` to the test's thread: the test does not touch it until the thread reported back.
private struct UnsafeProcessBox: @unchecked Sendable {
    let process: Process
    init(_ process: Process) { self.process = process }
}
#endif
