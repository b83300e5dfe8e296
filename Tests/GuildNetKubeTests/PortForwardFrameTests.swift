import GuildNetCore
import NIOCore
import NIOWebSocket
import Testing

@testable import GuildNetKube

/// The channel protocol as the client reads it: port prefixes stripped (even when split across
/// messages), error text collected, hostile frames refused.
@Suite("Port-forward channel protocol")
struct PortForwardFrameTests {
    static func frame(_ bytes: [UInt8], opcode: WebSocketOpcode = .binary, fin: Bool = true) -> WebSocketFrame {
        WebSocketFrame(fin: fin, opcode: opcode, data: ByteBuffer(bytes: bytes))
    }

    static func data(_ item: FrameReader.Item) -> [UInt8]? {
        if case .data(let buffer) = item { return Array(buffer.readableBytesView) }
        return nil
    }

    @Test("the port prefix is stripped from the first messages of each channel, even split in two")
    func prefixStripped() throws {
        var reader = FrameReader()
        #expect(Self.data(try reader.read(Self.frame([0, 80]))) == nil)
        #expect(!reader.channelsOpen)
        #expect(Self.data(try reader.read(Self.frame([1, 80]))) == nil)
        #expect(Self.data(try reader.read(Self.frame([1, 0]))) == nil)
        #expect(!reader.channelsOpen)
        #expect(Self.data(try reader.read(Self.frame([0, 0, 65, 66]))) == [65, 66])
        #expect(reader.channelsOpen)
        #expect(Self.data(try reader.read(Self.frame([0, 0, 0]))) == [0, 0])
        #expect(reader.errorText == nil)
    }

    @Test("error text after the prefix is collected, and bounded")
    func errorText() throws {
        var reader = FrameReader()
        _ = try reader.read(Self.frame([1, 0x50, 0x00]))
        _ = try reader.read(Self.frame([1] + Array("connection refused".utf8)))
        #expect(reader.errorText == "connection refused")
        _ = try reader.read(Self.frame([1] + [UInt8](repeating: 65, count: 10_000)))
        #expect((reader.errorText?.utf8.count ?? 0) == FrameReader.maxErrorBytes)
    }

    @Test("continuations stay on their channel; close, ping and hostile frames")
    func framesAndHostileInput() throws {
        var reader = FrameReader()
        _ = try reader.read(Self.frame([0, 1, 0]))
        _ = try reader.read(Self.frame([0, 7], fin: false))
        #expect(Self.data(try reader.read(Self.frame([8, 9], opcode: .continuation))) == [8, 9])
        if case .ping = try reader.read(Self.frame([1, 2], opcode: .ping)) {} else { Issue.record("a ping is answered") }
        #expect(throws: HostError.self) { _ = try reader.read(Self.frame([5, 1, 2])) }
        #expect(throws: HostError.self) { _ = try reader.read(Self.frame(Array("hi".utf8), opcode: .text)) }
        var fresh = FrameReader()
        #expect(throws: HostError.self) { _ = try fresh.read(Self.frame([1], opcode: .continuation)) }
        if case .closed = try reader.read(Self.frame([3, 232], opcode: .connectionClose)) {} else { Issue.record("close is seen") }
        #expect(reader.isClosed)
    }

    @Test("the request path escapes names and the subprotocols are offered v5 first")
    func pathAndSubprotocols() {
        #expect(PortForwardProtocol.path(namespace: "default", pod: "web-1") == "/api/v1/namespaces/default/pods/web-1/portforward")
        #expect(PortForwardProtocol.path(namespace: "a b", pod: "x/y") == "/api/v1/namespaces/a%20b/pods/x%2Fy/portforward")
        #expect(PortForwardProtocol.offeredSubprotocols == ["v5.channel.k8s.io", "v4.channel.k8s.io"])
        #expect(PortForwardProtocol.dataChannel(1) == 2 && PortForwardProtocol.errorChannel(1) == 3)
    }
}
