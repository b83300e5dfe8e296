import Foundation
import GuildNetCore
import Testing
import TestSupport

@Suite("metrics end to end")
struct MetricsEndToEndTests {
    /// GET over a plain loopback TCP socket.
    static func httpGet(port: Int, path: String) throws -> (status: Int, body: String) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ConditionTimeout(what: "socket()") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw ConditionTimeout(what: "connect to \(port)") }
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            data.append(contentsOf: buffer[0..<count])
        }
        let text = String(decoding: data, as: UTF8.self)
        let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
        let body = text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
        return (status, body)
    }

    @Test("GET /metrics labels every cluster series, drops an unregistered cluster's, and passes promtool")
    func metricsEndpoint() async throws {
        let dir = TemporaryDirectory("me")
        defer { dir.remove() }
        let daemon = try HostappProcess(stateDirectory: dir.path, extra: ["--metrics-addr", "127.0.0.1:0"])
        defer { daemon.terminate() }
        let ready = try await daemon.waitUntilReady()
        let port = try #require(Int(ready["metrics_port"]?.stringValue ?? ""))
        _ = try await daemon.request(["op": "cluster.register", "cluster": "m1"])
        _ = try await daemon.request(["op": "cluster.register", "cluster": "Other Cluster"])
        var (status, body) = try Self.httpGet(port: port, path: "/metrics")
        #expect(status == 200)
        #expect(body.contains("hostapp_clusters_active 2"))
        #expect(body.contains("hostapp_cluster_db_open{cluster_id=\"m1\"} 1"))
        #expect(body.contains("hostapp_cluster_lifecycle_events_total{cluster_id=\"m1\",event=\"ready\"} 1")
            || body.contains("hostapp_cluster_lifecycle_events_total{event=\"ready\",cluster_id=\"m1\"} 1"), "\(body)")
        #expect(body.contains("hostapp_cluster_child_restarts_total"))
        for line in body.split(separator: "\n") where line.hasPrefix("hostapp_cluster_") {
            #expect(line.contains("cluster_id=\""), "\(line)")
        }
        try Promtool.check(body)
        _ = try await daemon.request(["op": "cluster.unregister", "cluster": "m1"])
        (status, body) = try Self.httpGet(port: port, path: "/metrics")
        #expect(!body.contains("cluster_id=\"m1\""), "\(body)")
        #expect(body.contains("hostapp_clusters_active 1"))
        try Promtool.check(body)
        #expect(try Self.httpGet(port: port, path: "/other").status == 404)
    }
}

enum Promtool {
    static var path: String {
        ProcessInfo.processInfo.environment["PROMTOOL"] ?? Repository.root + "/.tools/bin/promtool"
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// `promtool check metrics` on an exposition; throws with promtool's output when it is rejected.
    static func check(_ exposition: String) throws {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw Failure(description: "promtool not found at \(path); run scripts/install-test-tools.sh")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["check", "metrics"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data(exposition.utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "promtool check metrics exited \(process.terminationStatus): \(String(decoding: data, as: UTF8.self))")
        }
    }
}
