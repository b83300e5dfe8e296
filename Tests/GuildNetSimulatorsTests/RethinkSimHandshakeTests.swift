import Foundation
import GuildNetCore
import GuildNetSimulators
import TestSupport
import Testing

/// The V1_0 handshake over a raw socket: SCRAM-SHA-256 with RethinkDB's error codes.
@Suite("RethinkSim handshake")
struct RethinkSimHandshakeTests {
    static func options() -> RethinkSimOptions {
        var options = RethinkSimOptions()
        options.users = ["admin": "", "app": "s3cret", "we,ird=name": "pw"]
        return options
    }

    @Test("a good password authenticates (server signature checked) and queries follow")
    func goodPassword() async throws {
        try await RethinkSim.withRunning(options: Self.options()) { _, endpoint in
            let client = try await RethinkRawClient.connect(port: endpoint.port)
            #expect(try await client.handshake(user: "app", password: "s3cret") == .authenticated)
            let info = try await client.run(0, [5])
            #expect(info.responseType == 5)
            #expect(info.rows.first?["name"] == "rethinksim")
            #expect(info.rows.first?["proxy"] == false)
        }
    }

    @Test("admin with the empty password, and a user name needing SCRAM escapes")
    func defaultAdminAndEscapedUser() async throws {
        try await RethinkSim.withRunning(options: Self.options()) { _, endpoint in
            let admin = try await RethinkRawClient.connect(port: endpoint.port)
            #expect(try await admin.handshake(user: "admin", password: "") == .authenticated)
            let escaped = try await RethinkRawClient.connect(port: endpoint.port)
            #expect(try await escaped.handshake(user: "we,ird=name", password: "pw") == .authenticated)
        }
    }

    @Test("a wrong password gets error_code 12 Wrong password, then the connection closes")
    func wrongPassword() async throws {
        try await RethinkSim.withRunning(options: Self.options()) { _, endpoint in
            let client = try await RethinkRawClient.connect(port: endpoint.port)
            #expect(try await client.handshake(user: "app", password: "nope") == .refused(code: 12, message: "Wrong password"))
            #expect(try await client.isClosedByServer())
        }
    }

    @Test("an unknown user gets error_code 17 Unknown user after the proof, then the connection closes")
    func unknownUser() async throws {
        try await RethinkSim.withRunning(options: Self.options()) { _, endpoint in
            let client = try await RethinkRawClient.connect(port: endpoint.port)
            #expect(try await client.handshake(user: "mallory", password: "x") == .refused(code: 17, message: "Unknown user"))
            #expect(try await client.isClosedByServer())
        }
    }

    @Test("setRefuseAuthentication refuses even the right password with error_code 12, until turned off")
    func refuseAuthentication() async throws {
        try await RethinkSim.withRunning(options: Self.options()) { sim, endpoint in
            await sim.setRefuseAuthentication(true)
            let refused = try await RethinkRawClient.connect(port: endpoint.port)
            #expect(try await refused.handshake(user: "app", password: "s3cret") == .refused(code: 12, message: "Wrong password"))
            await sim.setRefuseAuthentication(false)
            let accepted = try await RethinkRawClient.connect(port: endpoint.port)
            #expect(try await accepted.handshake(user: "app", password: "s3cret") == .authenticated)
        }
    }

    @Test("setUser changes a password for new connections")
    func changedPassword() async throws {
        try await RethinkSim.withRunning(options: Self.options()) { sim, endpoint in
            try await sim.setUser("app", password: "rotated")
            let old = try await RethinkRawClient.connect(port: endpoint.port)
            #expect(try await old.handshake(user: "app", password: "s3cret") == .refused(code: 12, message: "Wrong password"))
            let new = try await RethinkRawClient.connect(port: endpoint.port)
            #expect(try await new.handshake(user: "app", password: "rotated") == .authenticated)
        }
    }

    @Test("a wrong magic number gets RethinkDB's plain ERROR line, then the connection closes")
    func wrongMagic() async throws {
        try await RethinkSim.withRunning(options: Self.options()) { _, endpoint in
            let client = try await RethinkRawClient.connect(port: endpoint.port)
            try await client.send(Array("GET / HTTP/1.1\r\n\r\n".utf8))
            let reply = try await client.receiveMessage().map { String(decoding: $0, as: UTF8.self) }
            #expect(reply?.hasPrefix("ERROR: Received an unsupported protocol version.") == true, "\(reply ?? "nil")")
            #expect(try await client.isClosedByServer())
        }
    }

    @Test("malformed first messages get error codes 8, 2, 4, 15 and 7")
    func malformedFirstMessages() async throws {
        try await RethinkSim.withRunning(options: Self.options()) { _, endpoint in
            let magic: [UInt8] = [0xc3, 0xbd, 0xc2, 0x34]
            let cases: [([UInt8], Int64)] = [
                (Array("{not json".utf8) + [0], 8),
                (Array(#"{"protocol_version":1,"authentication_method":"SCRAM-SHA-256","authentication":"n,,n=admin,r=abc"}"#.utf8) + [0], 2),
                (Array(#"{"protocol_version":0,"authentication_method":"PLAIN","authentication":"n,,n=admin,r=abc"}"#.utf8) + [0], 4),
                (Array(#"{"protocol_version":0,"authentication_method":"SCRAM-SHA-256","authentication":"p=tls,,n=admin,r=abc"}"#.utf8) + [0], 15),
                ([UInt8](repeating: 0x41, count: 3000), 7),
            ]
            for (message, expectedCode) in cases {
                let client = try await RethinkRawClient.connect(port: endpoint.port)
                try await client.send(magic + message)
                let version = try await client.receiveMessage().map { try JSONParser.parse($0) }
                #expect(version?["success"] == true)
                let reply = try await client.receiveMessage().map { try JSONParser.parse($0) }
                #expect(reply?["success"] == false)
                #expect(reply?["error_code"]?.intValue == expectedCode, "\(reply?.jsonString ?? "nil")")
                #expect(try await client.isClosedByServer())
            }
        }
    }
}
