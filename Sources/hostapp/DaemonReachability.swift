import ArgumentParser
import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetStateDirectory

/// The socket `hostapp ctl` talks to, and which option chose it.
struct DaemonTarget {
    enum Source {
        case socketFlag
        case environment
        case stateDirectory(String)
    }

    let socket: String
    let source: Source

    /// The daemon a command talks to: `--socket`, else the socket of `--state-dir`, else
    /// `HOSTAPP_SOCKET`; `missing` is the message when none is given.
    static func choose(socket: String?, stateDir: String?, missing: String) throws -> DaemonTarget {
        if let socket { return DaemonTarget(socket: socket, source: .socketFlag) }
        if let stateDir {
            let directory = URL(fileURLWithPath: stateDir).standardizedFileURL.path
            return DaemonTarget(socket: StateDirectory(directory).socket, source: .stateDirectory(stateDir))
        }
        if let env = ProcessInfo.processInfo.environment["HOSTAPP_SOCKET"], !env.isEmpty {
            return DaemonTarget(socket: env, source: .environment)
        }
        throw ValidationError(missing)
    }

    /// Sends one request and returns the reply line. When the daemon cannot be reached, explains
    /// the likely cause on standard error and exits with status 2.
    func send(_ request: [String: JSONValue], id: String, timeout: Int) async throws -> [UInt8] {
        do {
            let client = try await ControlClient.connect(path: socket)
            do {
                let reply = try await client.request(JSONValue.object(request).jsonString, id: id, timeout: .seconds(timeout))
                await client.close()
                return reply
            } catch {
                await client.close()
                throw error
            }
        } catch {
            FileHandle.standardError.write(Data(DaemonReachability.explain(error, target: self).utf8))
            throw ExitCode(2)
        }
    }
}

/// Turns a failure to reach the daemon into its likely cause and the next step.
enum DaemonReachability {
    static func explain(_ error: any Error, target: DaemonTarget) -> String {
        let message = (error as? HostError)?.message ?? "\(error)"
        guard message.hasPrefix("cannot connect") else {
            // Connected, but the exchange failed (timeout, the daemon closed the connection).
            return "hostapp ctl: the daemon at \(target.socket) did not answer: \(message)\n"
        }
        let (cause, hint) = diagnose(target, connectFailure: message)
        return "hostapp ctl: cannot reach the daemon: \(cause)\nhint: \(hint)\n"
    }

    private static func diagnose(_ target: DaemonTarget, connectFailure: String) -> (cause: String, hint: String) {
        let files = FileManager.default
        let socketExists = files.fileExists(atPath: target.socket)
        let startHint: (String) -> String = { directory in
            "start it with `hostapp serve --state-dir \(directory)` (it runs in the foreground: use another shell or append &), or point ctl at a running daemon with --state-dir, --socket or HOSTAPP_SOCKET"
        }
        switch target.source {
        case .stateDirectory(let directory):
            var isDirectory: ObjCBool = false
            guard files.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                return (
                    "state directory \(directory) does not exist, so no daemon runs there",
                    "start one with `hostapp serve --state-dir \(directory)` (it creates the directory; it runs in the foreground: use another shell or append &), or fix --state-dir: it must name the directory a running daemon was started with (relative paths are taken from \(files.currentDirectoryPath))"
                )
            }
            if !socketExists {
                let usedBefore = files.fileExists(atPath: directory + "/hostapp.lock") || files.fileExists(atPath: directory + "/clusters")
                if usedBefore {
                    return ("no daemon is running on state directory \(directory) (there is no \(target.socket))", startHint(directory))
                }
                return (
                    "\(directory) is not a daemon's state directory (no hostapp.sock, hostapp.lock or clusters/ in it)",
                    "check --state-dir; or " + startHint(directory)
                )
            }
            return ("\(target.socket): \(reason(connectFailure))", startHint(directory))
        case .socketFlag, .environment:
            let origin = if case .socketFlag = target.source { "--socket" } else { "HOSTAPP_SOCKET" }
            if !socketExists {
                return (
                    "there is no socket at \(target.socket) (from \(origin))",
                    "is the daemon running, and is the path right? The daemon's socket is <state-dir>/hostapp.sock unless it was started with --socket"
                )
            }
            return ("\(target.socket) (from \(origin)): \(reason(connectFailure))", "is the daemon running? Start it with `hostapp serve --state-dir DIR`")
        }
    }

    /// The part of ControlClient's message after the path.
    private static func reason(_ connectFailure: String) -> String {
        guard let colon = connectFailure.range(of: ": ", options: .backwards) else { return connectFailure }
        return String(connectFailure[colon.upperBound...])
    }
}
