import Foundation
import GuildNetCore
import TestSupport
import Testing

/// What `hostapp ctl` says when a newcomer gets something wrong: the cause and the next step.
@Suite("hostapp ctl messages")
struct CtlMessagesEndToEndTests {
    @Test("an unreachable daemon: a missing state directory, one no daemon runs on, a stale socket")
    func unreachableDaemon() async throws {
        let dir = TemporaryDirectory("cm")
        defer { dir.remove() }
        let missing = try await runHostapp(["ctl", "--state-dir", dir.path + "/nope", "cluster.list"])
        #expect(missing.exitCode == 2)
        #expect(missing.output.contains("state directory \(dir.path)/nope does not exist"), "\(missing.output)")
        #expect(missing.output.contains("hostapp serve --state-dir"), "\(missing.output)")
        #expect(!missing.output.contains("connect(descriptor"), "\(missing.output)")

        // A directory a daemon ran on (its lock file stays), with a stale socket file nobody listens on.
        #expect(FileManager.default.createFile(atPath: dir.path + "/hostapp.lock", contents: nil))
        let stopped = try await runHostapp(["ctl", "--state-dir", dir.path, "cluster.list"])
        #expect(stopped.exitCode == 2)
        #expect(stopped.output.contains("no daemon is running on state directory"), "\(stopped.output)")
        let socketPath = dir.path + "/hostapp.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in socketPath.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)  // bound but never listening: connect is refused, as after kill -9
        let stale = try await runHostapp(["ctl", "--state-dir", dir.path, "cluster.list"])
        #expect(stale.exitCode == 2)
        #expect(stale.output.contains("nothing listens on it"), "\(stale.output)")
    }

    @Test("usage errors print ctl's own usage; JSON that does not parse is refused before sending")
    func usageErrors() async throws {
        let noTarget = try await runHostapp(["ctl", "-o", "json", "cluster.list"], environment: ["HOSTAPP_SOCKET": ""])
        #expect(noTarget.exitCode == 64)
        #expect(noTarget.output.contains("Usage: hostapp ctl "), "\(noTarget.output)")
        #expect(noTarget.output.contains("--state-dir"), "\(noTarget.output)")
        let notAField = try await runHostapp(["ctl", "--state-dir", "/nonexistent", "cluster.register", "prod-eu"])
        #expect(notAField.exitCode == 64)
        #expect(notAField.output.contains("is not FIELD=VALUE"), "\(notAField.output)")
        #expect(notAField.output.contains("Usage: hostapp ctl "), "\(notAField.output)")
        let brokenJSON = try await runHostapp(["ctl", "--state-dir", "/nonexistent", "cluster.register", "cluster=a", "settings={namespace:apps}"])
        #expect(brokenJSON.exitCode == 64)
        #expect(brokenJSON.output.contains("looks like JSON but does not parse"), "\(brokenJSON.output)")
    }

    @Test("ctl --help lists every op of the dispatcher")
    func helpListsOps() async throws {
        let help = try await runHostapp(["ctl", "--help"])
        #expect(help.exitCode == 0)
        for op in ["cluster.register", "cluster.unregister", "db.put", "k8s.watch", "rethink.changes", "settings.set", "host.shutdown"] {
            #expect(help.output.contains("  \(op)"), "\(op) missing from ctl --help")
        }
        // Examples must fit ArgumentParser's 80 columns, or they wrap and no longer run as written.
        let examples = help.output.split(separator: "\n").filter { $0.hasPrefix("  hostapp ctl") || $0.hasPrefix("  export ") }
        #expect(examples.count >= 5)
        #expect(examples.allSatisfy { $0.count <= 80 })
    }
}
