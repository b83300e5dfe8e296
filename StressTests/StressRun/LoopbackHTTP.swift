import BenchSupport
import Foundation

/// Blocking loopback TCP exchanges (a /metrics scrape, traffic through a port-forward), each run on
/// a thread of its own so no Swift task blocks.
enum LoopbackHTTP {
    /// Runs blocking `work` on its own thread.
    static func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try work() }) }
            thread.start()
        }
    }

    /// `GET path` with `Connection: close`; the body (headers stripped).
    static func get(port: Int, path: String, timeoutSeconds: Int = 10) async throws -> String {
        try await blocking {
            let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n".utf8)
            let response = try exchange(port: port, send: request, readToEnd: true, expect: 0, timeoutSeconds: timeoutSeconds)
            let text = String(decoding: response, as: UTF8.self)
            guard text.hasPrefix("HTTP/1.1 200") || text.hasPrefix("HTTP/1.0 200") else {
                throw BenchError("GET \(path) on port \(port): \(text.prefix(120))")
            }
            guard let split = text.range(of: "\r\n\r\n") else { return "" }
            return String(text[split.upperBound...])
        }
    }

    /// Sends `message` and reads until `message.count` bytes came back (an echo through a forward).
    static func echo(port: Int, message: [UInt8], timeoutSeconds: Int = 10) async throws -> Bool {
        try await blocking {
            try exchange(port: port, send: message, readToEnd: false, expect: message.count, timeoutSeconds: timeoutSeconds) == message
        }
    }

    /// Connects, sends, then reads `expect` bytes (or to EOF with `readToEnd`).
    static func exchange(port: Int, send bytes: [UInt8], readToEnd: Bool, expect: Int, timeoutSeconds: Int) throws -> [UInt8] {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw BenchError("socket() failed: errno \(errno)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw BenchError("connect to 127.0.0.1:\(port) failed: errno \(errno)") }
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { throw BenchError("send to port \(port) failed: errno \(errno)") }
            sent += count
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while readToEnd || received.count < expect {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { break }
            guard count > 0 else { throw BenchError("recv from port \(port) failed: errno \(errno)") }
            received.append(contentsOf: buffer[0..<count])
        }
        return received
    }
}
