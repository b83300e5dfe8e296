import Foundation
import GuildNetCore
import GuildNetRethink
import NIOCore

/// The server side of the V1_0 handshake (rethinkdb `server.cc` and `scram_authenticator.cc`):
/// magic → version reply, client-first → server-first, client-final → server signature. Errors are
/// RethinkDB's `{"success":false,"error":…,"error_code":N}` after which the connection closes.
struct RethinkSimHandshake {
    enum Step: Equatable {
        /// Not enough bytes yet.
        case needMore
        /// Write these bytes and continue.
        case reply([UInt8])
        /// Write these bytes; the client is authenticated and queries follow.
        case authenticated([UInt8])
        /// Write these bytes, then close.
        case fail([UInt8])
    }

    private enum State {
        case magic, first, final, done
    }

    private struct Failure: Error {
        var code: Int64
        var message: String
    }

    private let shared: RethinkSimShared
    private var state = State.magic
    private var clientFirstBare = ""
    private var serverFirst = ""
    private var nonce = ""
    private var credential: RethinkSimCredential?

    init(shared: RethinkSimShared) {
        self.shared = shared
    }

    /// Consumes the next handshake unit from `buffer`.
    mutating func step(_ buffer: inout ByteBuffer) -> Step {
        switch state {
        case .done:
            return .needMore
        case .magic:
            guard let magic = buffer.readInteger(endianness: .little, as: UInt32.self) else { return .needMore }
            guard magic == RethinkWire.magicV1_0 else {
                state = .done
                let text =
                    "ERROR: Received an unsupported protocol version. This port is for RethinkDB queries. "
                    + "Does your client driver version not match the server?\n"
                return .fail(Array(text.utf8) + [0])
            }
            state = .first
            let reply: JSONValue = [
                "success": true, "min_protocol_version": 0, "max_protocol_version": 0,
                "server_version": .string(shared.options.serverVersion),
            ]
            return .reply(reply.serialized + [0])
        case .first, .final:
            let message: [UInt8]
            do {
                guard let read = try RethinkHandshakeFraming.readMessage(from: &buffer) else { return .needMore }
                message = read
            } catch {
                return failure(Failure(code: RethinkWire.HandshakeErrorCode.messageTooLong.rawValue, message: "Limited read buffer size."))
            }
            do {
                if state == .first {
                    let reply = try firstMessage(message)
                    state = .final
                    return .reply(reply)
                }
                let reply = try finalMessage(message)
                state = .done
                return .authenticated(reply)
            } catch {
                return failure(error)
            }
        }
    }

    private mutating func failure(_ failure: Failure) -> Step {
        state = .done
        let reply: JSONValue = ["success": false, "error": .string(failure.message), "error_code": .int(failure.code)]
        return .fail(reply.serialized + [0])
    }

    private func parse(_ message: [UInt8]) throws(Failure) -> [String: JSONValue] {
        guard let value = try? JSONParser.parse(message) else { throw Failure(code: 8, message: "Invalid JSON object.") }
        return value.objectValue ?? [:]
    }

    private func authentication(_ object: [String: JSONValue]) throws(Failure) -> String {
        guard case .string(let text)? = object["authentication"] else {
            throw Failure(code: 5, message: "Expected a string for `authentication`.")
        }
        return text
    }

    private mutating func firstMessage(_ message: [UInt8]) throws(Failure) -> [UInt8] {
        let object = try parse(message)
        guard let version = object["protocol_version"], version.doubleValue != nil else {
            throw Failure(code: 1, message: "Expected a number for `protocol_version`.")
        }
        guard version.doubleValue == 0 else { throw Failure(code: 2, message: "Unsupported `protocol_version`.") }
        guard case .string(let method)? = object["authentication_method"] else {
            throw Failure(code: 3, message: "Expected a string for `authentication_method`.")
        }
        guard method == "SCRAM-SHA-256" else { throw Failure(code: 4, message: "Unsupported `authentication_method`.") }
        let text = try authentication(object)

        guard text.hasPrefix("n,") else { throw Failure(code: 15, message: "Channel binding is not supported") }
        let afterFlag = text.dropFirst(2)
        guard let comma = afterFlag.firstIndex(of: ",") else { throw Failure(code: 10, message: "Invalid encoding") }
        clientFirstBare = String(afterFlag[afterFlag.index(after: comma)...])
        let attributes = try Self.splitAttributes(clientFirstBare)
        for key in attributes.keys where key != "n" && key != "r" {
            if key == "m" { throw Failure(code: 11, message: "Extensions not supported") }
            throw Failure(code: 10, message: "Invalid encoding")
        }
        guard let escapedUser = attributes["n"], let clientNonce = attributes["r"] else {
            throw Failure(code: 10, message: "Invalid encoding")
        }
        let user = try Self.decodeUser(escapedUser)
        credential = shared.credentials.withLock { $0[user] }
        // An unknown user gets a plausible salt; the failure comes after the proof (error 17), as in RethinkDB.
        var generator = SystemRandomNumberGenerator()
        let salt = credential?.salt ?? (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let iterations = credential?.iterations ?? shared.options.iterations
        nonce = clientNonce + SCRAM.makeNonce()
        serverFirst = "r=\(nonce),s=\(Data(salt).base64EncodedString()),i=\(iterations)"
        let reply: JSONValue = ["success": true, "authentication": .string(serverFirst)]
        return reply.serialized + [0]
    }

    private func finalMessage(_ message: [UInt8]) throws(Failure) -> [UInt8] {
        let text = try authentication(try parse(message))
        guard let credential else { throw Failure(code: 17, message: "Unknown user") }
        let withoutProof = text.range(of: ",p=").map { String(text[..<$0.lowerBound]) } ?? text
        let authMessage = SCRAM.authMessage(clientFirstBare: clientFirstBare, serverFirst: serverFirst, clientFinalWithoutProof: withoutProof)
        let attributes = try Self.splitAttributes(text)
        // RethinkDB checks the attributes in key order: c, m, p, r.
        for key in attributes.keys.sorted() {
            let value = attributes[key] ?? ""
            switch key {
            case "c":
                guard value == SCRAM.channelBinding else { throw Failure(code: 10, message: "Invalid encoding") }
            case "m":
                throw Failure(code: 11, message: "Extensions not supported")
            case "p":
                let refused = shared.refuseAuthentication.withLock { $0 }
                guard !refused, let proof = Data(base64Encoded: value),
                    SCRAM.verify(proof: Array(proof), storedKey: credential.keys.storedKey, authMessage: authMessage)
                else { throw Failure(code: 12, message: "Wrong password") }
            case "r":
                guard value == nonce else { throw Failure(code: 20, message: "Other error") }
            default:
                throw Failure(code: 10, message: "Invalid encoding")
            }
        }
        guard attributes["c"] != nil, attributes["r"] != nil, attributes["p"] != nil else {
            throw Failure(code: 10, message: "Invalid encoding")
        }
        let signature = Data(credential.keys.serverSignature(authMessage: authMessage)).base64EncodedString()
        let reply: JSONValue = ["success": true, "authentication": .string("v=\(signature)")]
        return reply.serialized + [0]
    }

    /// RethinkDB's strict `k=v,k=v` split: one-letter keys, no repeats.
    private static func splitAttributes(_ message: String) throws(Failure) -> [Character: String] {
        var attributes: [Character: String] = [:]
        for part in message.split(separator: ",", omittingEmptySubsequences: false) {
            guard part.count >= 2, let key = part.first, part.dropFirst().first == "=", attributes[key] == nil else {
                throw Failure(code: 10, message: "Invalid encoding")
            }
            attributes[key] = String(part.dropFirst(2))
        }
        return attributes
    }

    /// SASL name decoding: `=2C` is `,`, `=3D` is `=`, any other `=` is an error (18).
    private static func decodeUser(_ escaped: String) throws(Failure) -> String {
        var parts = escaped.components(separatedBy: "=")
        var user = parts.removeFirst()
        for part in parts {
            if part.hasPrefix("2C") {
                user += "," + part.dropFirst(2)
            } else if part.hasPrefix("3D") {
                user += "=" + part.dropFirst(2)
            } else {
                throw Failure(code: 18, message: "Invalid username encoding")
            }
        }
        return user
    }
}
