import ArgumentParser
import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetStateDirectory

struct CtlCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctl",
        abstract: "Send one control op to a running daemon and print the reply.",
        discussion: """
            Fields are FIELD=VALUE pairs; a VALUE that parses as JSON is sent as JSON, anything else \
            as a string. Examples:
              hostapp ctl --state-dir /var/lib/guildnet cluster.register cluster=prod-eu
              hostapp ctl --socket /run/hostapp.sock db.put cluster=prod-eu key=greeting value=hello
              hostapp ctl -o json cluster.list
            Exit status: 0 on an ok reply, 1 on an error reply, 2 when the daemon cannot be reached.
            """
    )

    @Option(name: .long, help: "Control socket path (default: $HOSTAPP_SOCKET, else <state-dir>/hostapp.sock).")
    var socket: String?

    @Option(name: .long, help: "State directory of the daemon (to find its socket).")
    var stateDir: String?

    @Option(name: .shortAndLong, help: "Output: text (human-readable) or json (the raw reply line).")
    var output: String = "text"

    @Option(name: .long, help: "Seconds to wait for the reply.")
    var timeout: Int = 60

    @Argument(help: "The op, e.g. host.status, cluster.register, db.put.")
    var op: String

    @Argument(help: "FIELD=VALUE pairs.")
    var fields: [String] = []

    mutating func run() async throws {
        guard output == "text" || output == "json" else { throw ValidationError("-o must be text or json") }
        var request: [String: JSONValue] = ["id": "ctl", "op": .string(op)]
        for field in fields {
            guard let equals = field.firstIndex(of: "="), equals != field.startIndex else {
                throw ValidationError("field \(String(reflecting: field)) is not FIELD=VALUE")
            }
            let name = String(field[..<equals])
            let raw = String(field[field.index(after: equals)...])
            request[name] = (try? JSONParser.parse(raw)) ?? .string(raw)
        }
        let path: String
        if let socket {
            path = socket
        } else if let env = ProcessInfo.processInfo.environment["HOSTAPP_SOCKET"], !env.isEmpty {
            path = env
        } else if let stateDir {
            path = StateDirectory(URL(fileURLWithPath: stateDir).standardizedFileURL.path).socket
        } else {
            throw ValidationError("give --socket, --state-dir or HOSTAPP_SOCKET")
        }
        let reply: [UInt8]
        do {
            let client = try await ControlClient.connect(path: path)
            do {
                reply = try await client.request(JSONValue.object(request).jsonString, id: "ctl", timeout: .seconds(timeout))
            } catch {
                await client.close()
                throw error
            }
            await client.close()
        } catch {
            FileHandle.standardError.write(Data("hostapp ctl: cannot reach the daemon at \(path): \(error)\n".utf8))
            throw ExitCode(2)
        }
        let parsed = try? JSONParser.parse(reply)
        if output == "json" || parsed == nil {
            print(String(decoding: reply, as: UTF8.self))
        } else if let parsed {
            print(HumanOutput.render(parsed), terminator: "")
        }
        if parsed?["ok"] != .bool(true) { throw ExitCode(1) }
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
                    out += "\(pad)\(key): \(scalar(member))\n"
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

    private static func scalar(_ value: JSONValue) -> String {
        switch value {
        case .string(let string): string
        case .object(let members) where members.isEmpty: "{}"
        case .array(let items) where items.isEmpty: "[]"
        default: value.jsonString
        }
    }
}
