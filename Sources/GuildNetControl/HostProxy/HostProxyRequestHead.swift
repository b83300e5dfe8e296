import Foundation
import GuildNetCore
import NIOCore
import NIOHTTP1

/// Reads a request head (up to the blank line), keeping the bytes after it.
struct ProxyHeadReader {
    var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    var leftover: [UInt8] = []

    init(_ iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator) {
        self.iterator = iterator
    }

    /// The head without its final CRLFCRLF; `nil` when the peer closes first.
    mutating func readHead(limit: Int) async throws -> [UInt8]? {
        let end: [UInt8] = [13, 10, 13, 10]
        while true {
            if let range = leftover.firstRange(of: end) {
                let head = Array(leftover[..<range.lowerBound])
                leftover = Array(leftover[range.upperBound...])
                return head
            }
            guard leftover.count <= limit else { throw HostError(.lineTooLong, "request head longer than \(limit) bytes") }
            guard let buffer = try await iterator.next() else { return nil }
            leftover += buffer.readableBytesView
        }
    }
}

/// A parsed request head: request line and header lines, as received.
struct ProxyRequestHead {
    var method: String
    var target: String
    var headers: [(name: String, value: String)]

    /// A head NIO's HTTP decoder parsed (keep-alive connections).
    init(_ head: HTTPRequestHead) {
        method = head.method.rawValue
        target = head.uri
        headers = head.headers.map { ($0.name, $0.value) }
    }

    /// A head read as bytes (the first request of a connection that asks for an upgrade).
    init?(_ bytes: [UInt8]) {
        let lines = String(decoding: bytes, as: UTF8.self).components(separatedBy: "\r\n")
        guard let first = lines.first else { return nil }
        let parts = first.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1."), parts[1].hasPrefix("/") else { return nil }
        method = String(parts[0])
        target = String(parts[1])
        headers = []
        for line in lines.dropFirst() where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
    }

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name }?.value
    }

    var bearerToken: String? {
        guard let value = header("authorization") else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }

    /// `/clusters/{cluster}/rest?query` → (`cluster`, `/rest?query`).
    var clusterPath: (String, String)? {
        let prefix = "/clusters/"
        guard target.hasPrefix(prefix) else { return nil }
        let remainder = target.dropFirst(prefix.count)
        let end = remainder.firstIndex { $0 == "/" || $0 == "?" } ?? remainder.endIndex
        let name = String(remainder[..<end])
        guard !name.isEmpty else { return nil }
        var rest = String(remainder[end...])
        if !rest.hasPrefix("/") { rest = "/" + rest }
        return (name.removingPercentEncoding ?? name, rest)
    }

    var isUpgrade: Bool {
        header("connection")?.lowercased().contains("upgrade") == true && header("upgrade") != nil
    }

    /// The head of an upgrade request as sent to the API server: its path, its `Host`, the
    /// cluster's credentials; `Connection` and `Upgrade` pass unchanged.
    func rewrittenUpgrade(path: String, host: String, authorization: String?) -> [UInt8] {
        let dropped: Set<String> = ["authorization", "host", "proxy-authorization", "proxy-connection", "keep-alive"]
        var text = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\n"
        for (name, value) in headers where !dropped.contains(name.lowercased()) {
            text += "\(name): \(value)\r\n"
        }
        if let authorization { text += "Authorization: \(authorization)\r\n" }
        text += "\r\n"
        return Array(text.utf8)
    }

    /// The headers relayed on a keep-alive exchange: the end-to-end ones (RFC 9110 §7.6.1), without
    /// the caller's credentials, `Host` and body framing (the relaying client sets its own).
    var relayedHeaders: HTTPHeaders {
        let connectionOptions = Set(
            (header("connection") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() })
        var relayed = HTTPHeaders()
        for (name, value) in headers {
            let lower = name.lowercased()
            if Self.notRelayed.contains(lower) || connectionOptions.contains(lower) { continue }
            relayed.add(name: name, value: value)
        }
        return relayed
    }

    /// Hop-by-hop and framing headers, never relayed in either direction.
    static let notRelayed: Set<String> = [
        "authorization", "host", "connection", "keep-alive", "proxy-authorization", "proxy-authenticate", "proxy-connection", "te",
        "trailer", "transfer-encoding", "upgrade", "content-length",
    ]
}
