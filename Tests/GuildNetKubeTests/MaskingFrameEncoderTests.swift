import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

@testable import GuildNetKube

/// The tunnel's frame encoder writes what NIO's decoder reads back: every length class, masked
/// and unmasked, with and without the channel byte as extension data.
@Suite("Tunnel frame encoder")
struct MaskingFrameEncoderTests {
    /// Encodes `frame` with ``MaskingFrameEncoder`` and decodes the bytes with NIO's decoder.
    static func roundTrip(_ frame: WebSocketFrame) throws -> (WebSocketFrame, wire: ByteBuffer) {
        let encoder = EmbeddedChannel(handler: MaskingFrameEncoder())
        try encoder.writeOutbound(frame)
        var wire = ByteBuffer()
        while var part = try encoder.readOutbound(as: ByteBuffer.self) { wire.writeBuffer(&part) }
        let decoder = EmbeddedChannel(handler: ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 20)))
        try decoder.writeInbound(wire)
        let decoded = try #require(try decoder.readInbound(as: WebSocketFrame.self))
        #expect(try decoder.readInbound(as: WebSocketFrame.self) == nil)
        _ = try encoder.finish()
        _ = try decoder.finish()
        return (decoded, wire)
    }

    @Test("masked frames of every length class decode to the same payload", arguments: [0, 1, 7, 8, 9, 125, 126, 127, 65535, 65536, 70001])
    func maskedLengths(length: Int) throws {
        let key = try #require(WebSocketMaskingKey([0x5A, 0x01, 0xC3, 0x7E]))
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var channelByte = ByteBuffer()
        channelByte.writeInteger(UInt8(0))
        let frame = WebSocketFrame(fin: true, opcode: .binary, maskKey: key, data: ByteBuffer(bytes: payload), extensionData: channelByte)
        let (decoded, wire) = try Self.roundTrip(frame)
        #expect(decoded.opcode == .binary && decoded.fin && decoded.maskKey == key)
        #expect(Array(decoded.unmaskedData.readableBytesView) == [0] + payload)
        #expect(decoded.unmaskedPayload == decoded.unmaskedData)
        // One buffer per frame, and the payload on the wire is masked (differs from the plain bytes).
        let lengthField = length + 1 < 126 ? 0 : length + 1 <= 65535 ? 2 : 8
        #expect(wire.readableBytes == 2 + lengthField + 4 + length + 1)
        if length >= 8 { #expect(Array(wire.readableBytesView.suffix(length)) != payload) }
    }

    @Test("unmasked and control frames keep their opcode, flags and payload")
    func unmaskedAndControl() throws {
        let close = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: ByteBuffer(bytes: [0x03, 0xE8]))
        let (decodedClose, _) = try Self.roundTrip(close)
        #expect(decodedClose.opcode == .connectionClose && Array(decodedClose.unmaskedData.readableBytesView) == [0x03, 0xE8])
        let plain = WebSocketFrame(fin: false, opcode: .continuation, data: ByteBuffer(string: "abc"))
        let (decodedPlain, _) = try Self.roundTrip(plain)
        #expect(decodedPlain.maskKey == nil && !decodedPlain.fin && decodedPlain.opcode == .continuation)
        #expect(String(buffer: decodedPlain.data) == "abc")
    }

    @Test("word-wide masking equals the byte-by-byte definition at every length and alignment")
    func maskMatchesDefinition() throws {
        let key = try #require(WebSocketMaskingKey([0xA1, 0xB2, 0xC3, 0xD4]))
        for length in 0..<40 {
            for start in 0..<3 {
                var bytes = (0..<(length + start)).map { UInt8(truncatingIfNeeded: $0 &* 13) }
                let expected = bytes.enumerated().map { index, byte in index < start ? byte : byte ^ key[(index - start) % 4] }
                bytes.withUnsafeMutableBytes { raw in
                    WebSocketFrameLayout.mask(UnsafeMutableRawBufferPointer(rebasing: raw[start...]), key: key)
                }
                #expect(bytes == expected, "length \(length), start \(start)")
                var phased = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 13) }
                let expectedPhased = phased.enumerated().map { index, byte in byte ^ key[(index + start) % 4] }
                phased.withUnsafeMutableBytes { WebSocketFrameLayout.mask($0, key: key, phase: start) }
                #expect(phased == expectedPhased, "length \(length), phase \(start)")
            }
        }
    }

    @Test("the accept value is RFC 6455's example")
    func acceptValue() {
        #expect(TunnelWebSocketUpgrader<Int>.acceptValue(for: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }
}
