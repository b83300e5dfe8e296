import Foundation
import GuildNetCore
import GuildNetRethink
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A tiny blocking RethinkDB wire client over a POSIX socket, for tests only: it speaks the
/// handshake and frames byte by byte, independent of the project's client. Each instance is used
/// by one test task at a time (every call runs to completion before the next), so the mutable
/// descriptor is never accessed concurrently; that is what makes `@unchecked Sendable` safe here.
final class RethinkRawClient: @unchecked Sendable {
    private var fd: Int32

    /// The outcome of a handshake.
    enum Handshake: Equatable {
        case authenticated
        case refused(code: Int64, message: String)
    }

    private init(fd: Int32) {
        self.fd = fd
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
    }

    /// Connects to 127.0.0.1:`port` with 10 s send/receive timeouts.
    static func connect(port: Int) async throws -> RethinkRawClient {
        try await runBlocking {
            let fd = try connectLoopback(port: port)
            return RethinkRawClient(fd: fd)
        }
    }

    /// Connects and authenticates, failing the test if the handshake is refused.
    static func authenticated(port: Int, user: String = "admin", password: String = "") async throws -> RethinkRawClient {
        let client = try await connect(port: port)
        let outcome = try await client.handshake(user: user, password: password)
        guard outcome == .authenticated else { throw TestFailure("handshake refused: \(outcome)") }
        return client
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    // MARK: - Bytes

    func send(_ bytes: [UInt8]) async throws {
        try await runBlocking { try self.blockingSend(bytes) }
    }

    private func blockingSend(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestFailure("send() failed: errno \(errno)") }
            sent += n
        }
    }

    /// Exactly `count` bytes, or nil if the server closed first.
    private func blockingReceive(_ count: Int) throws -> [UInt8]? {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: max(count, 1))
        while result.count < count {
            let n = chunk.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, count - result.count, 0) }
            if n == 0 { return nil }
            guard n > 0 else { throw TestFailure("recv() failed: errno \(errno)") }
            result.append(contentsOf: chunk[0..<n])
        }
        return result
    }

    /// Bytes up to (without) the next NUL, or nil at end of stream.
    func receiveMessage() async throws -> [UInt8]? {
        try await runBlocking {
            var message: [UInt8] = []
            while true {
                guard let byte = try self.blockingReceive(1) else { return message.isEmpty ? nil : message }
                if byte[0] == 0 { return message }
                message.append(byte[0])
            }
        }
    }

    /// True once the server has closed the connection (reads end of stream; data still pending is skipped).
    func isClosedByServer() async throws -> Bool {
        try await runBlocking {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buffer.withUnsafeMutableBytes { Glibc.recv(self.fd, $0.baseAddress, $0.count, 0) }
                if n == 0 { return true }
                if n < 0 { return errno == ECONNRESET }
            }
        }
    }

    /// True when nothing is waiting to be read right now (the server has not answered).
    func hasNoPendingData() async throws -> Bool {
        try await runBlocking {
            var byte: UInt8 = 0
            let n = Glibc.recv(self.fd, &byte, 1, Int32(MSG_DONTWAIT | MSG_PEEK))
            return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
        }
    }

    // MARK: - Handshake

    /// Sends the magic and the client-first message in one write (as the Python driver does),
    /// then completes SCRAM-SHA-256, checking the server signature.
    func handshake(user: String, password: String) async throws -> Handshake {
        var magic = [UInt8]()
        withUnsafeBytes(of: RethinkWire.magicV1_0.littleEndian) { magic.append(contentsOf: $0) }
        let clientNonce = SCRAM.makeNonce()
        let clientFirstBare = "n=\(SCRAM.escape(user: user)),r=\(clientNonce)"
        let first: JSONValue = ["protocol_version": 0, "authentication_method": "SCRAM-SHA-256", "authentication": .string("n,," + clientFirstBare)]
        try await send(magic + first.serialized + [0])

        guard let versionReply = try await receiveMessage() else { throw TestFailure("closed before the version reply") }
        let version = try JSONParser.parse(versionReply)
        if version["success"] != true { return try refusal(version) }
        guard version["min_protocol_version"] == 0, version["max_protocol_version"] == 0 else {
            throw TestFailure("unexpected version reply \(version.jsonString)")
        }

        guard let firstReply = try await receiveMessage() else { throw TestFailure("closed before the server-first message") }
        let serverFirstReply = try JSONParser.parse(firstReply)
        if serverFirstReply["success"] != true { return try refusal(serverFirstReply) }
        guard let serverFirst = serverFirstReply["authentication"]?.stringValue else { throw TestFailure("no server-first") }
        let attributes = SCRAM.attributes(serverFirst)
        guard let nonce = attributes["r"], nonce.hasPrefix(clientNonce), let saltText = attributes["s"],
            let salt = Data(base64Encoded: saltText), let iterations = attributes["i"].flatMap({ Int($0) })
        else { throw TestFailure("bad server-first \(serverFirst)") }

        let keys = try SCRAM.Keys(password: password, salt: Array(salt), iterations: iterations)
        let withoutProof = "c=\(SCRAM.channelBinding),r=\(nonce)"
        let authMessage = SCRAM.authMessage(clientFirstBare: clientFirstBare, serverFirst: serverFirst, clientFinalWithoutProof: withoutProof)
        let proof = Data(keys.clientProof(authMessage: authMessage)).base64EncodedString()
        let final: JSONValue = ["authentication": .string("\(withoutProof),p=\(proof)")]
        try await send(final.serialized + [0])

        guard let finalReply = try await receiveMessage() else { throw TestFailure("closed before the server-final message") }
        let serverFinal = try JSONParser.parse(finalReply)
        if serverFinal["success"] != true { return try refusal(serverFinal) }
        let expected = "v=" + Data(keys.serverSignature(authMessage: authMessage)).base64EncodedString()
        guard serverFinal["authentication"]?.stringValue == expected else { throw TestFailure("server signature mismatch") }
        return .authenticated
    }

    private func refusal(_ reply: JSONValue) throws -> Handshake {
        guard let code = reply["error_code"]?.intValue, let message = reply["error"]?.stringValue else {
            throw TestFailure("malformed handshake error \(reply.jsonString)")
        }
        return .refused(code: code, message: message)
    }

    // MARK: - Frames

    /// Sends `token | length | JSON`.
    func sendQuery(_ token: UInt64, _ query: JSONValue) async throws {
        try await sendFrame(token, query.serialized)
    }

    func sendFrame(_ token: UInt64, _ payload: [UInt8], announcedLength: UInt32? = nil) async throws {
        var bytes = [UInt8]()
        withUnsafeBytes(of: token.littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: (announcedLength ?? UInt32(payload.count)).littleEndian) { bytes.append(contentsOf: $0) }
        try await send(bytes + payload)
    }

    /// The next response frame, or nil if the server closed the connection.
    func readResponse() async throws -> (token: UInt64, response: JSONValue)? {
        let bytes: (UInt64, [UInt8])? = try await runBlocking {
            guard let header = try self.blockingReceive(12) else { return nil }
            let token = header[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
            let length = header[8..<12].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
            guard let payload = try self.blockingReceive(Int(length)) else { return nil }
            return (token, payload)
        }
        guard let (token, payload) = bytes else { return nil }
        return (token, try JSONParser.parse(payload))
    }

    /// Sends a query and reads the response, which must carry the same token.
    func run(_ token: UInt64, _ query: JSONValue) async throws -> JSONValue {
        try await sendQuery(token, query)
        guard let (received, response) = try await readResponse() else { throw TestFailure("connection closed awaiting token \(token)") }
        guard received == token else { throw TestFailure("response for token \(received), expected \(token): \(response.jsonString)") }
        return response
    }

    /// `[1, term, {}]`.
    func start(_ token: UInt64, _ term: JSONValue, _ optargs: JSONValue = [:]) async throws -> JSONValue {
        try await run(token, [1, term, optargs])
    }
}

/// Short ReQL term builders for raw-protocol tests.
enum Q {
    static func db(_ name: String) -> JSONValue { [14, [.string(name)]] }
    static func table(_ name: String) -> JSONValue { [15, [.string(name)]] }
    static func table(_ db: String, _ name: String) -> JSONValue { [15, [Self.db(db), .string(name)]] }
    static func array(_ values: [JSONValue]) -> JSONValue { [2, .array(values)] }
    static func insert(_ table: JSONValue, _ docs: [JSONValue], _ optargs: JSONValue = [:]) -> JSONValue {
        [56, [table, array(docs)], optargs]
    }
    static func get(_ table: JSONValue, _ key: JSONValue) -> JSONValue { [16, [table, key]] }
    static func changes(_ source: JSONValue, _ optargs: JSONValue = [:]) -> JSONValue { [152, [source], optargs] }
    /// `lambda row: row[field] <op> value` with variable id 1.
    static func field(_ field: String, _ op: Int64, _ value: JSONValue) -> JSONValue {
        [69, [[2, [1]], [.int(op), [[170, [[10, [1]], .string(field)]], value]]]]
    }
}

extension JSONValue {
    /// The response type `t`.
    var responseType: Int64? { self["t"]?.intValue }
    /// The rows `r`.
    var rows: [JSONValue] { self["r"]?.arrayValue ?? [] }
    /// The error message of an error response.
    var errorMessage: String? { rows.first?.stringValue }
}
