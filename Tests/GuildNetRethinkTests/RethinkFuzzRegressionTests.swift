import GuildNetCore
import NIOCore
import TestSupport
import Testing

@testable import GuildNetRethink

/// Inputs from Fuzz/Regressions/FuzzRethinkWire, replayed through the production handshake steps.
@Suite struct RethinkFuzzRegressionTests {
    /// A hello whose min_protocol_version is above its max used to build `min...max` and trap.
    @Test func helloWithAnInvertedVersionRangeIsAProtocolError() throws {
        var buffer = ByteBuffer(bytes: try FuzzRegressions.input("FuzzRethinkWire", "hello-inverted-version-range"))
        let hello = try #require(try RethinkHandshakeFraming.readMessage(from: &buffer))
        let handshake = RethinkHandshake(user: "admin", password: "pw", clientNonce: "abc")
        #expect(throws: RethinkError.protocolViolation(reason: "server supports protocol versions 1-0, not 0")) {
            try handshake.checkHello(hello)
        }
    }
}
