import GuildNetControl

/// The text after `hostapp ctl --help`'s options: how fields are written, working examples, and
/// every op with its fields, generated from the dispatcher's table so it cannot drift.
enum CtlHelp {
    /// Each runs as written, in order, in a directory where `hostapp serve --state-dir ./state`
    /// runs (scripts/readme-tour.sh runs them). At most 76 characters: ArgumentParser wraps at 80.
    static let examples = [
        "hostapp ctl --state-dir ./state host.status",
        "hostapp ctl --state-dir ./state cluster.register cluster=prod-eu",
        "hostapp ctl --state-dir ./state -o json cluster.list",
        "export HOSTAPP_SOCKET=./state/hostapp.sock    # instead of --state-dir",
        "hostapp ctl settings.set cluster=prod-eu 'settings={\"namespace\":\"apps\"}'",
        "hostapp ctl db.put cluster=prod-eu key=greeting value=hello",
        "hostapp ctl db.get cluster=prod-eu key=greeting",
        "hostapp ctl cluster.unregister cluster=prod-eu purge=true",
        "hostapp ctl audit.tail limit=5    # who changed what (audit/admin.log)",
    ]

    static var discussion: String {
        var text = """
            Fields are FIELD=VALUE pairs. A VALUE that parses as JSON is sent as JSON, anything else \
            as a string; quote JSON for the shell: 'settings={"namespace":"apps"}'. The daemon's socket \
            is --socket, else <--state-dir>/hostapp.sock, else $HOSTAPP_SOCKET.

            Examples (with `hostapp serve --state-dir ./state` running in the current directory):

            """
        for example in examples { text += "  \(example)\n" }
        text += "\nOps and their fields (docs/control-protocol.md describes each):\n"
        let width = ControlDispatcher.catalog.map(\.op.count).max() ?? 0
        for entry in ControlDispatcher.catalog {
            let padding = String(repeating: " ", count: width - entry.op.count + 2)
            text += "  \(entry.op)" + (entry.fields.isEmpty ? "" : padding + entry.fields.joined(separator: " ")) + "\n"
        }
        text += "\nExit status: 0 on an ok reply, 1 on an error reply, 2 when the daemon cannot be reached."
        return text
    }
}
