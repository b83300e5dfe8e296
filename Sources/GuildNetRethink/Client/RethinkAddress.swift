import GuildNetCore

/// Where a RethinkDB server listens for client drivers.
public struct RethinkAddress: Sendable, Hashable, CustomStringConvertible {
    /// RethinkDB's client driver port.
    public static let defaultPort = 28015

    public var host: String
    public var port: Int

    public init(host: String, port: Int = RethinkAddress.defaultPort) {
        self.host = host
        self.port = port
    }

    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port` (the `rethinkdb.address` setting); the port
    /// defaults to 28015.
    /// - Throws: ``HostError`` `.invalidSetting` when the text is not such an address.
    public init(parsing text: String) throws(HostError) {
        let trimmed = text.trimmingWhitespace
        func invalid(_ why: String) -> HostError {
            HostError(.invalidSetting, "invalid RethinkDB address \"\(trimmed)\": \(why)")
        }
        var host = Substring(trimmed)
        var portText: Substring?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw invalid("missing ]") }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { throw invalid("expected :port after ]") }
                portText = rest.dropFirst()
            }
        } else if let colon = host.lastIndex(of: ":") {
            guard host.firstIndex(of: ":") == colon else { throw invalid("IPv6 addresses need brackets: [addr]:port") }
            portText = host[host.index(after: colon)...]
            host = host[..<colon]
        }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "/" }) else { throw invalid("empty or malformed host") }
        var port = Self.defaultPort
        if let portText {
            guard let parsed = Int(portText), (1...65_535).contains(parsed) else { throw invalid("port must be 1-65535") }
            port = parsed
        }
        self.init(host: String(host), port: port)
    }

    /// `host:port`, with brackets around an IPv6 host.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

extension String {
    fileprivate var trimmingWhitespace: String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice = slice.dropFirst() }
        while let last = slice.last, last.isWhitespace { slice = slice.dropLast() }
        return String(slice)
    }
}
