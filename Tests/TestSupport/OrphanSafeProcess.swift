import Foundation
import GuildNetRuntime

extension Process {
    /// `run()` through ``ChildProcessLauncher``: the child (a daemon, kubectl, Prometheus) gets
    /// SIGKILL from the kernel when the test process dies, so a crashed test run leaves no
    /// orphan daemons (and their kubectl proxies) loading the machine. Call after setting
    /// `executableURL` and `arguments`.
    public func runOrphanSafe() throws {
        guard let executable = executableURL?.path else { throw TestFailure("runOrphanSafe: no executableURL") }
        ChildProcessLauncher.configure(self, executable: executable, arguments: arguments ?? [])
        try ChildProcessLauncher.runBlocking(self)
    }
}
