import Foundation

// MARK: Blocking work off the cooperative pool

/// Runs blocking `work` (socket I/O, waiting for a process) on its own thread.
public func runBlocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try work() })
        }
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

// MARK: Blocking loopback sockets

/// A blocking TCP socket connected to 127.0.0.1:`port`, with 10 s send and receive timeouts. The
/// caller closes it. Call from ``runBlocking(_:)``.
public func connectLoopback(port: Int) throws -> Int32 {
    #if canImport(Glibc)
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let fd = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard fd >= 0 else { throw TestFailure("socket() failed: errno \(errno)") }
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
    let connected = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else {
        let code = errno
        close(fd)
        throw TestFailure("connect() to 127.0.0.1:\(port) failed: errno \(code)")
    }
    return fd
}

// MARK: Minimal HTTP/1.1 client over a POSIX socket

public struct HTTPReply: Sendable {
    public var status: Int
    public var headers: [String: String]  // lower-cased names
    public var body: [UInt8]
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// `GET path` on 127.0.0.1:port with `Connection: close`; reads until the server closes.
public func httpGet(port: Int, path: String) async throws -> HTTPReply {
    try await runBlocking { try blockingHTTPGet(port: port, path: path) }
}

private func blockingHTTPGet(port: Int, path: String) throws -> HTTPReply {
    let fd = try connectLoopback(port: port)
    defer { close(fd) }

    let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n".utf8)
    var sent = 0
    while sent < request.count {
        let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { throw TestFailure("send() failed: errno \(errno)") }
        sent += n
    }

    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n == 0 { break }
        guard n > 0 else { throw TestFailure("recv() failed: errno \(errno)") }
        response.append(contentsOf: buffer[0..<n])
    }
    return try parseHTTPResponse(response)
}

private func parseHTTPResponse(_ bytes: [UInt8]) throws -> HTTPReply {
    let separator: [UInt8] = Array("\r\n\r\n".utf8)
    guard let headEnd = bytes.firstRange(of: separator) else { throw TestFailure("no end of HTTP head in \(bytes.count) bytes") }
    let head = String(decoding: bytes[..<headEnd.lowerBound], as: UTF8.self)
    var lines = head.components(separatedBy: "\r\n")
    let statusLine = lines.removeFirst().split(separator: " ")
    guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else {
        throw TestFailure("bad status line in \(head)")
    }
    var headers: [String: String] = [:]
    for line in lines {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    var body = Array(bytes[headEnd.upperBound...])
    if headers["transfer-encoding"]?.lowercased() == "chunked" {
        body = try decodeChunked(body)
    } else if let length = headers["content-length"].flatMap({ Int($0) }) {
        guard body.count >= length else { throw TestFailure("body shorter than content-length \(length)") }
        body = Array(body.prefix(length))
    }
    return HTTPReply(status: status, headers: headers, body: body)
}

private func decodeChunked(_ bytes: [UInt8]) throws -> [UInt8] {
    var out: [UInt8] = []
    var rest = bytes[...]
    let crlf: [UInt8] = [13, 10]
    while true {
        guard let lineEnd = rest.firstRange(of: crlf),
            let size = Int(String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";")[0], radix: 16)
        else { throw TestFailure("bad chunk header") }
        rest = rest[lineEnd.upperBound...]
        if size == 0 { return out }
        guard rest.count >= size + 2 else { throw TestFailure("truncated chunk") }
        out.append(contentsOf: rest.prefix(size))
        rest = rest.dropFirst(size + 2)
    }
}

// MARK: Package root and external tools

/// promtool from `$PROMTOOL`, else `<package root>/.tools/bin/promtool`; `nil` when neither is executable.
public func locatePromtool() -> URL? {
    if let fromEnvironment = ProcessInfo.processInfo.environment["PROMTOOL"], !fromEnvironment.isEmpty {
        return FileManager.default.isExecutableFile(atPath: fromEnvironment) ? URL(fileURLWithPath: fromEnvironment) : nil
    }
    let candidate = URL(fileURLWithPath: Repository.root).appendingPathComponent(".tools/bin/promtool")
    return FileManager.default.isExecutableFile(atPath: candidate.path) ? candidate : nil
}

/// The Prometheus server from `$PROMETHEUS`, else `<package root>/.tools/bin/prometheus` (installed
/// with promtool by scripts/install-test-tools.sh); `nil` when neither is executable.
public func locatePrometheus() -> URL? {
    if let fromEnvironment = ProcessInfo.processInfo.environment["PROMETHEUS"], !fromEnvironment.isEmpty {
        return FileManager.default.isExecutableFile(atPath: fromEnvironment) ? URL(fileURLWithPath: fromEnvironment) : nil
    }
    let candidate = URL(fileURLWithPath: Repository.root).appendingPathComponent(".tools/bin/prometheus")
    return FileManager.default.isExecutableFile(atPath: candidate.path) ? candidate : nil
}

public struct ProcessResult: Sendable {
    public var exitCode: Int32
    public var output: String
    public var signaled = false
}

/// Runs `executable` with `arguments` (and `environment` added to this process's), feeding `input`
/// on standard input; returns its exit code and merged output.
public func runProcess(
    _ executable: URL, _ arguments: [String], input: [UInt8] = [], environment: [String: String] = [:]
) async throws -> ProcessResult {
    try await runBlocking {
        let inputFile = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString).txt")
        try Data(input).write(to: inputFile)
        defer { try? FileManager.default.removeItem(at: inputFile) }
        let inputHandle = try FileHandle(forReadingFrom: inputFile)
        defer { try? inputHandle.close() }

        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        process.standardInput = inputHandle
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.runOrphanSafe()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ProcessResult(
            exitCode: process.terminationStatus, output: String(decoding: data, as: UTF8.self),
            signaled: process.terminationReason == .uncaughtSignal)
    }
}

/// The built `hostapp` binary: `$HOSTAPP_BIN`, else next to the test bundle, else `.build/debug`.
public var hostappBinary: URL {
    if let path = ProcessInfo.processInfo.environment["HOSTAPP_BIN"], !path.isEmpty { return URL(fileURLWithPath: path) }
    let sibling = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("hostapp")
    if FileManager.default.isExecutableFile(atPath: sibling.path) { return sibling }
    return URL(fileURLWithPath: Repository.root + "/.build/debug/hostapp")
}

/// Runs the built `hostapp` with `arguments` to completion.
public func runHostapp(_ arguments: [String], environment: [String: String] = [:], input: [UInt8] = []) async throws -> ProcessResult {
    try await runProcess(hostappBinary, arguments, input: input, environment: environment)
}
