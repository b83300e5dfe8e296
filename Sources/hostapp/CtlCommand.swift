import ArgumentParser
import Foundation
import GuildNetControl
import GuildNetCore

struct CtlCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctl",
        abstract: "Send one control op to a running daemon and print the reply.",
        discussion: CtlHelp.discussion
    )

    @Option(name: .long, help: "Control socket path (default: <state-dir>/hostapp.sock, else $HOSTAPP_SOCKET).")
    var socket: String?

    @Option(name: .long, help: "State directory of the daemon (to find its socket).")
    var stateDir: String?

    @Option(name: .shortAndLong, help: "Output: text (human-readable) or json (the raw reply line).")
    var output: String = "text"

    @Option(name: .long, help: "Seconds to wait for the reply.")
    var timeout: Int = 60

    @Argument(help: "The op, e.g. host.status, cluster.register, db.put (the list is below).")
    var op: String

    @Argument(help: "FIELD=VALUE pairs.")
    var fields: [String] = []

    /// Usage errors are found here so ArgumentParser prints ctl's own usage with them.
    func validate() throws {
        guard output == "text" || output == "json" else { throw ValidationError("-o must be text or json, got \(String(reflecting: output))") }
        _ = try request()
        _ = try target()
    }

    mutating func run() async throws {
        let request = try request()
        let reply = try await target().send(request, id: "ctl", timeout: timeout)
        let parsed = try? JSONParser.parse(reply)
        if output == "json" || parsed == nil {
            print(String(decoding: reply, as: UTF8.self))
        } else if let parsed {
            print(HumanOutput.render(parsed), terminator: "")
        }
        if parsed?["ok"] != .bool(true) { throw ExitCode(1) }
    }

    /// The request object built from the op and its FIELD=VALUE pairs.
    func request() throws -> [String: JSONValue] {
        var request: [String: JSONValue] = ["id": "ctl", "op": .string(op)]
        for field in fields {
            guard let equals = field.firstIndex(of: "="), equals != field.startIndex else {
                throw ValidationError("field \(String(reflecting: field)) is not FIELD=VALUE (e.g. cluster=prod-eu)")
            }
            let name = String(field[..<equals])
            let raw = String(field[field.index(after: equals)...])
            request[name] = try Self.value(of: name, raw)
        }
        return request
    }

    /// A VALUE that parses as JSON is sent as JSON, anything else as a string; a VALUE that starts
    /// like a JSON object or array but does not parse is refused (it is almost always lost quoting).
    static func value(of name: String, _ raw: String) throws -> JSONValue {
        do {
            return try JSONParser.parse(raw)
        } catch {
            if let first = raw.first, first == "{" || first == "[" {
                throw ValidationError(
                    """
                    field \(name) looks like JSON but does not parse (\(error)): \(raw)
                    Quote the whole pair for the shell so JSON's double quotes survive, e.g. '\(name)={"namespace":"apps"}'
                    """)
            }
            return .string(raw)
        }
    }

    /// Which socket to use, and where that choice came from: flags win over the environment.
    func target() throws -> DaemonTarget {
        try DaemonTarget.choose(
            socket: socket, stateDir: stateDir,
            missing: "which daemon? Give --state-dir DIR (the directory `hostapp serve --state-dir DIR` runs on), --socket PATH, or set HOSTAPP_SOCKET")
    }
}

/// Renders a reply for people: `ok` results as indented `key: value` lines, errors as one line.
enum HumanOutput {
    static func render(_ reply: JSONValue) -> String {
        if reply["ok"] == .bool(true) {
            var out = ""
            write(reply["result"] ?? .null, indent: 0, into: &out)
            return out.isEmpty ? "ok\n" : out
        }
        let code = reply["error"]?["code"]?.stringValue ?? "error"
        let message = reply["error"]?["message"]?.stringValue ?? ""
        let transient = reply["error"]?["transient"] == .bool(true) ? " (transient)" : ""
        return "error \(code)\(transient): \(message)\n"
    }

    private static func write(_ value: JSONValue, indent: Int, into out: inout String) {
        let pad = String(repeating: "  ", count: indent)
        switch value {
        case .object(let members):
            for key in members.keys.sorted() {
                guard let member = members[key] else { continue }
                switch member {
                case .object(let inner) where !inner.isEmpty:
                    out += "\(pad)\(key):\n"
                    write(member, indent: indent + 1, into: &out)
                case .array(let items) where !items.isEmpty:
                    out += "\(pad)\(key):\n"
                    write(member, indent: indent + 1, into: &out)
                default:
                    out += "\(pad)\(key): \(scalar(member, key: key))\n"
                }
            }
        case .array(let items):
            for item in items {
                if case .object = item {
                    var inner = ""
                    write(item, indent: indent + 1, into: &inner)
                    out += "\(pad)-" + inner.dropFirst(pad.count + 1)
                } else {
                    out += "\(pad)- \(scalar(item))\n"
                }
            }
        default:
            out += "\(pad)\(scalar(value))\n"
        }
    }

    /// `*_at` fields are times (seconds since 1970): shown as UTC dates.
    private static func scalar(_ value: JSONValue, key: String) -> String {
        if key.hasSuffix("_at"), let seconds = value.doubleValue {
            return time(seconds)
        }
        return scalar(value)
    }

    static func time(_ seconds: Double) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate, .withFullTime, .withFractionalSeconds, .withSpaceBetweenDateAndTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }

    private static func scalar(_ value: JSONValue) -> String {
        switch value {
        case .string(let string): string
        case .object(let members) where members.isEmpty: "{}"
        case .array(let items) where items.isEmpty: "[]"
        default: value.jsonString
        }
    }
}
