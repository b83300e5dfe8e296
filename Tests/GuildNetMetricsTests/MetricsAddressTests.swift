import GuildNetCore
import GuildNetMetrics
import Testing

@Suite("MetricsAddress parsing")
struct MetricsAddressTests {
    struct Good: Sendable, CustomTestStringConvertible {
        var text: String
        var host: String
        var port: Int
        var testDescription: String { text }
    }

    static let good: [Good] = [
        Good(text: "127.0.0.1:9464", host: "127.0.0.1", port: 9464),
        Good(text: "127.0.0.1:0", host: "127.0.0.1", port: 0),
        Good(text: "127.255.255.254:65535", host: "127.255.255.254", port: 65535),
        Good(text: "127.0.0.2:80", host: "127.0.0.2", port: 80),
        Good(text: "[::1]:0", host: "::1", port: 0),
        Good(text: "[::1]:9464", host: "::1", port: 9464),
        Good(text: "[0:0:0:0:0:0:0:1]:1", host: "::1", port: 1),
        Good(text: "[::0001]:5", host: "::1", port: 5),
        Good(text: "localhost:0", host: "localhost", port: 0),
        Good(text: "LocalHost:8080", host: "localhost", port: 8080),
    ]

    @Test(arguments: good)
    func parsesLoopbackAddresses(_ entry: Good) throws {
        let address = try MetricsAddress.parse(entry.text)
        #expect(address.host == entry.host)
        #expect(address.port == entry.port)
        // The description is a canonical form that parses back to the same address.
        #expect(try MetricsAddress.parse(address.description) == address)
    }

    @Test func descriptionBracketsIPv6() throws {
        #expect(try MetricsAddress.parse("[::1]:9464").description == "[::1]:9464")
        #expect(try MetricsAddress.parse("127.0.0.1:9464").description == "127.0.0.1:9464")
        #expect(try MetricsAddress.parse("localhost:0").description == "localhost:0")
    }

    static let malformed: [String] = [
        "", ":", "127.0.0.1", "127.0.0.1:", ":9464", "localhost", "127.0.0.1:abc", "127.0.0.1:-1", "127.0.0.1:+80",
        "127.0.0.1:65536", "127.0.0.1:99999999999999999999", "127.0.0.1:8 0", "127.0.0.1:80 ", " 127.0.0.1:80",
        "::1:9464", "::1", "[::1]", "[::1]9464", "[::1]:", "[::1:80", "[127.0.0.1]:80", "[]:80", "[fe80::1%lo]:80",
        "[::1::]:80", "[1:2:3:4:5:6:7:8:9]:80", "[12345::1]:80", "local host:80", "127.0.0.1:80/metrics",
        "http://127.0.0.1:80",
    ]

    @Test(arguments: malformed)
    func rejectsMalformedAddresses(_ text: String) {
        #expect {
            try MetricsAddress.parse(text)
        } throws: { error in
            (error as? HostError)?.code == .configInvalid
        }
    }

    static let notLoopback: [String] = [
        "0.0.0.0:9464", "192.168.1.10:9464", "10.0.0.1:80", "128.0.0.1:80", "126.255.255.255:80",
        "[::]:9464", "[::2]:80", "[fe80::1]:80", "[2001:db8::1]:80", "example.com:80", "metrics.local:9464",
        "localhost.example.com:80", "127.0.0.01:80", "127.1:80",
    ]

    @Test(arguments: notLoopback)
    func rejectsNonLoopbackHosts(_ text: String) {
        #expect {
            try MetricsAddress.parse(text)
        } throws: { error in
            guard let hostError = error as? HostError else { return false }
            return hostError.code == .configInvalid && hostError.message.contains("loopback") && !hostError.transient
        }
    }
}
