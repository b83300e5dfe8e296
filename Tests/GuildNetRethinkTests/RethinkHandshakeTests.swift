import Foundation
import GuildNetCore
import Testing

@testable import GuildNetRethink

/// The client's handshake steps against a server computed here with the shared SCRAM helpers.
@Suite struct RethinkHandshakeTests {
    static let salt: [UInt8] = Array(0..<16)
    static let serverNonce = "c2VydmVyLW5vbmNl"

    static func message(_ json: JSONValue) -> [UInt8] { json.serialized }

    static func serverFirst(for handshake: RethinkHandshake, nonce: String? = nil) -> String {
        "r=\(nonce ?? handshake.clientNonce + serverNonce),s=\(Data(salt).base64EncodedString()),i=4096"
    }

    @Test func initialBytesAreMagicThenClientFirst() throws {
        let handshake = RethinkHandshake(user: "ad=m,in", password: "pw", clientNonce: "abc")
        let bytes = handshake.initialBytes()
        #expect(Array(bytes.prefix(4)) == [0xc3, 0xbd, 0xc2, 0x34])
        #expect(bytes.last == 0)
        let json = try JSONParser.parse(Array(bytes.dropFirst(4).dropLast()))
        #expect(json["protocol_version"] == 0)
        #expect(json["authentication_method"] == "SCRAM-SHA-256")
        #expect(json["authentication"] == "n,,n=ad=3Dm=2Cin,r=abc")
    }

    @Test func completesWithAVerifiedServerSignature() throws {
        var handshake = RethinkHandshake(user: "admin", password: "s3cret")
        let hello = Self.message(["success": true, "min_protocol_version": 0, "max_protocol_version": 0, "server_version": "2.4.4"])
        #expect(try handshake.checkHello(hello) == "2.4.4")
        let serverFirst = Self.serverFirst(for: handshake)
        let final = try handshake.clientFinal(serverFirst: Self.message(["success": true, "authentication": .string(serverFirst)]))
        #expect(final.last == 0)
        let reply = try JSONParser.parse(Array(final.dropLast()))
        let text = try #require(reply["authentication"]?.stringValue)
        let attributes = SCRAM.attributes(text)
        #expect(attributes["c"] == "biws")
        #expect(attributes["r"] == handshake.clientNonce + Self.serverNonce)
        let proof = try #require(attributes["p"].flatMap { Data(base64Encoded: $0) })

        // The server side: check the proof, answer with its signature.
        let keys = try SCRAM.Keys(password: "s3cret", salt: Self.salt, iterations: 4096)
        let authMessage = SCRAM.authMessage(
            clientFirstBare: handshake.clientFirstBare, serverFirst: serverFirst,
            clientFinalWithoutProof: "c=biws,r=\(handshake.clientNonce + Self.serverNonce)")
        #expect(SCRAM.verify(proof: Array(proof), storedKey: keys.storedKey, authMessage: authMessage))
        let signature = Data(keys.serverSignature(authMessage: authMessage)).base64EncodedString()
        try handshake.verifyServerFinal(Self.message(["success": true, "authentication": .string("v=\(signature)")]))

        // A server that does not know the password cannot produce the signature.
        let forged = Data(repeating: 7, count: 32).base64EncodedString()
        #expect(throws: RethinkError.authenticationFailed(user: "admin", reason: "the server signature does not match")) {
            try handshake.verifyServerFinal(Self.message(["success": true, "authentication": .string("v=\(forged)")]))
        }
        #expect(throws: RethinkError.self) {
            try handshake.verifyServerFinal(Self.message(["success": true, "authentication": "x=1"]))
        }
    }

    @Test func rejectsANonceThatDoesNotExtendTheClients() {
        var handshake = RethinkHandshake(user: "admin", password: "pw")
        let serverFirst = Self.serverFirst(for: handshake, nonce: "someone-else")
        #expect(throws: RethinkError.authenticationFailed(user: "admin", reason: "the server's nonce does not extend the client nonce")) {
            _ = try handshake.clientFinal(serverFirst: Self.message(["success": true, "authentication": .string(serverFirst)]))
        }
        let same = Self.serverFirst(for: handshake, nonce: handshake.clientNonce)
        #expect(throws: RethinkError.self) {
            _ = try handshake.clientFinal(serverFirst: Self.message(["success": true, "authentication": .string(same)]))
        }
    }

    @Test func classifiesServerRefusals() {
        var handshake = RethinkHandshake(user: "admin", password: "pw")
        let wrong = Self.message(["success": false, "error": "Wrong password", "error_code": 12])
        #expect(throws: RethinkError.authenticationFailed(user: "admin", reason: "Wrong password")) {
            _ = try handshake.clientFinal(serverFirst: wrong)
        }
        let version = Self.message(["success": false, "error": "Unsupported protocol version", "error_code": 2])
        #expect(throws: RethinkError.protocolViolation(reason: "handshake rejected: Unsupported protocol version (error_code 2)")) {
            _ = try handshake.checkHello(version)
        }
        #expect(throws: RethinkError.self) { _ = try handshake.checkHello(Array("not json".utf8)) }
        let range = Self.message(["success": true, "min_protocol_version": 1, "max_protocol_version": 2])
        #expect(throws: RethinkError.self) { _ = try handshake.checkHello(range) }
        let badIterations = Self.message(["success": true, "authentication": .string("r=\(handshake.clientNonce)x,s=AAAA,i=0")])
        #expect(throws: RethinkError.self) { _ = try handshake.clientFinal(serverFirst: badIterations) }
    }

    @Test func errorsNeverContainThePassword() {
        var handshake = RethinkHandshake(user: "admin", password: "very-secret-pw")
        let refusals: [[UInt8]] = [
            Self.message(["success": false, "error": "Wrong password", "error_code": 12]),
            Self.message(["success": true, "authentication": "r=zzz,s=AAAA,i=1"]),
        ]
        for refusal in refusals {
            do {
                _ = try handshake.clientFinal(serverFirst: refusal)
            } catch {
                #expect(!error.hostError.message.contains("very-secret-pw"))
                #expect(!String(describing: error).contains("very-secret-pw"))
            }
        }
    }
}
