import Foundation
import GuildNetCore

/// The client side of the V1_0 handshake with SCRAM-SHA-256, as pure steps (no I/O):
///
/// 1. ``initialBytes()``: the magic and the client-first message, sent in one write.
/// 2. ``checkHello(_:)``: the server's hello (protocol range check).
/// 3. ``clientFinal(serverFirst:)``: checks the nonce prefix, derives the keys with the server's salt
///    and iterations, returns the client-final message with the proof.
/// 4. ``verifyServerFinal(_:)``: compares the server's `v=` with the expected signature.
///
/// The password is used in step 3 only and never appears in an error. Public so the RethinkDB fuzz
/// target (Fuzz/) parses server messages with exactly these steps.
public struct RethinkHandshake {
    /// The server's iteration count above which we refuse to spend the CPU.
    public static let maxIterations = 10_000_000

    let user: String
    private let password: String
    let clientNonce: String
    private(set) var expectedServerSignature: [UInt8]?

    public init(user: String, password: String, clientNonce: String = SCRAM.makeNonce()) {
        self.user = user
        self.password = password
        self.clientNonce = clientNonce
    }

    var clientFirstBare: String { "n=\(SCRAM.escape(user: user)),r=\(clientNonce)" }

    /// The magic number (u32 LE) followed by the client-first JSON and its NUL.
    public func initialBytes() -> [UInt8] {
        var bytes: [UInt8] = withUnsafeBytes(of: RethinkWire.magicV1_0.littleEndian) { Array($0) }
        let message: JSONValue = [
            "protocol_version": 0,
            "authentication_method": "SCRAM-SHA-256",
            "authentication": .string("n,," + clientFirstBare),
        ]
        bytes += message.serialized
        bytes.append(0)
        return bytes
    }

    /// Checks the server hello; returns its `server_version`.
    public func checkHello(_ message: [UInt8]) throws(RethinkError) -> String? {
        let object = try parse(message, step: "hello")
        // Not `(min...max).contains(0)`: a range with min > max traps, and these numbers come from the server.
        if let min = object["min_protocol_version"]?.intValue, let max = object["max_protocol_version"]?.intValue,
            !(min <= 0 && 0 <= max)
        {
            throw .protocolViolation(reason: "server supports protocol versions \(min)-\(max), not 0")
        }
        return object["server_version"]?.stringValue
    }

    /// Answers the server-first message with the client-final message (JSON and NUL).
    public mutating func clientFinal(serverFirst message: [UInt8]) throws(RethinkError) -> [UInt8] {
        let object = try parse(message, step: "server-first")
        guard let serverFirst = object["authentication"]?.stringValue else {
            throw .protocolViolation(reason: "server-first message has no authentication string")
        }
        let attributes = SCRAM.attributes(serverFirst)
        guard let nonce = attributes["r"], nonce.hasPrefix(clientNonce), nonce.count > clientNonce.count else {
            throw .authenticationFailed(user: user, reason: "the server's nonce does not extend the client nonce")
        }
        guard let saltText = attributes["s"], let salt = Data(base64Encoded: saltText), !salt.isEmpty else {
            throw .protocolViolation(reason: "server-first message has no valid salt")
        }
        guard let iterationsText = attributes["i"], let iterations = Int(iterationsText),
            (1...Self.maxIterations).contains(iterations)
        else {
            throw .protocolViolation(reason: "server-first message has no valid iteration count")
        }
        let keys: SCRAM.Keys
        do {
            keys = try SCRAM.Keys(password: password, salt: Array(salt), iterations: iterations)
        } catch {
            throw .protocolViolation(reason: "cannot derive SCRAM keys (\(type(of: error)))")
        }
        let clientFinalWithoutProof = "c=\(SCRAM.channelBinding),r=\(nonce)"
        let authMessage = SCRAM.authMessage(
            clientFirstBare: clientFirstBare, serverFirst: serverFirst, clientFinalWithoutProof: clientFinalWithoutProof)
        expectedServerSignature = keys.serverSignature(authMessage: authMessage)
        let proof = Data(keys.clientProof(authMessage: authMessage)).base64EncodedString()
        let reply: JSONValue = ["authentication": .string("\(clientFinalWithoutProof),p=\(proof)")]
        return reply.serialized + [0]
    }

    /// Verifies the server-final message's `v=` (the server proves it knows the password too).
    public func verifyServerFinal(_ message: [UInt8]) throws(RethinkError) {
        let object = try parse(message, step: "server-final")
        guard let expected = expectedServerSignature,
            let final = object["authentication"]?.stringValue,
            let signatureText = SCRAM.attributes(final)["v"],
            let signature = Data(base64Encoded: signatureText),
            SCRAM.constantTimeEquals(Array(signature), expected)
        else {
            throw .authenticationFailed(user: user, reason: "the server signature does not match")
        }
    }

    /// Parses one handshake message; a `success: false` reply becomes its classified error.
    private func parse(_ message: [UInt8], step: String) throws(RethinkError) -> [String: JSONValue] {
        guard let json = try? JSONParser.parse(message), let object = json.objectValue else {
            throw .protocolViolation(reason: "\(step) message is not a JSON object")
        }
        guard object["success"]?.boolValue == true else {
            let text = object["error"]?.stringValue ?? "handshake failed"
            throw RethinkError.classifyHandshake(errorCode: object["error_code"]?.intValue, message: text, user: user)
        }
        return object
    }
}
