import GuildNetCore

/// A loopback address for the /metrics listener, parsed from "HOST:PORT" ("127.0.0.1:9464", "[::1]:0", "localhost:0").
public struct MetricsAddress: Sendable, Equatable, CustomStringConvertible {
    /// `localhost`, a dotted-quad address in 127.0.0.0/8, or `::1` (without brackets).
    public var host: String
    /// 0...65535; 0 asks the kernel for a free port.
    public var port: Int

    /// Throws HostError(.configInvalid, ...) for syntax errors, bad ports, and non-loopback hosts (the listener must stay on loopback: 127.0.0.0/8, ::1, localhost).
    public static func parse(_ text: String) throws(HostError) -> MetricsAddress {
        func invalid(_ reason: String) -> HostError {
            HostError(.configInvalid, "metrics address \(String(reflecting: text)): \(reason)")
        }
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw invalid("missing ']' after IPv6 address") }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw invalid("expected ':PORT' after ']'") }
            portPart = rest.dropFirst()
            guard hostPart.contains(":") else { throw invalid("brackets are only for IPv6 addresses") }
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw invalid("expected HOST:PORT") }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            guard !hostPart.contains(":") else { throw invalid("an IPv6 address must be written in brackets, e.g. [::1]:9464") }
        }
        guard !hostPart.isEmpty else { throw invalid("missing host") }
        let port = try parsePort(portPart, invalid)

        let host: String
        if hostPart.lowercased() == "localhost" {
            host = "localhost"
        } else if let octets = ipv4Octets(hostPart) {
            guard octets[0] == 127 else { throw invalid("the metrics listener must stay on loopback (127.0.0.0/8, ::1, localhost)") }
            host = String(hostPart)
        } else if let groups = ipv6Groups(hostPart) {
            guard groups == [0, 0, 0, 0, 0, 0, 0, 1] else {
                throw invalid("the metrics listener must stay on loopback (127.0.0.0/8, ::1, localhost)")
            }
            host = "::1"
        } else if hostPart.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" }) {
            throw invalid("host \(hostPart) is not loopback; the metrics listener must stay on 127.0.0.0/8, ::1 or localhost")
        } else {
            throw invalid("malformed host \(String(reflecting: String(hostPart)))")
        }
        return MetricsAddress(host: host, port: port)
    }

    /// `HOST:PORT`, with brackets around an IPv6 host; ``parse(_:)`` reads it back.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    private static func parsePort(_ text: Substring, _ invalid: (String) -> HostError) throws(HostError) -> Int {
        guard !text.isEmpty else { throw invalid("missing port") }
        guard text.utf8.count <= 5, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let port = Int(text)
        else {
            throw invalid("port \(String(reflecting: String(text))) is not a number from 0 to 65535")
        }
        guard port <= 65535 else { throw invalid("port \(port) is out of range 0...65535") }
        return port
    }

    /// Four decimal octets without leading zeros (`127.0.0.1`); `nil` for anything else.
    private static func ipv4Octets(_ text: Substring) -> [Int]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var octets: [Int] = []
        for part in parts {
            guard (1...3).contains(part.utf8.count),
                part.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                part.count == 1 || !part.hasPrefix("0"),
                let value = Int(part), value <= 255
            else { return nil }
            octets.append(value)
        }
        return octets
    }

    /// The eight 16-bit groups of an IPv6 address in hex notation with at most one `::`
    /// (no embedded IPv4, no zone); `nil` for anything else.
    private static func ipv6Groups(_ text: Substring) -> [UInt16]? {
        func groups(_ part: Substring) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            for group in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard (1...4).contains(group.utf8.count), group.allSatisfy(\.isHexDigit),
                    let value = UInt16(group, radix: 16)
                else { return nil }
                result.append(value)
            }
            return result
        }
        guard let gap = text.firstRange(of: "::") else {
            guard let all = groups(text), all.count == 8 else { return nil }
            return all
        }
        let headText = text[..<gap.lowerBound]
        let tailText = text[gap.upperBound...]
        guard !tailText.contains("::"), let head = groups(headText), let tail = groups(tailText),
            head.count + tail.count <= 7
        else { return nil }
        return head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
    }
}
