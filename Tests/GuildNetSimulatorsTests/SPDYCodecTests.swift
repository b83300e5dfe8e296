import Foundation
import NIOCore
import Testing

@testable import GuildNetSimulators

/// KubeSim's SPDY/3 frame codec and header-block compression.
@Suite("SPDY/3 codec")
struct SPDYCodecTests {
    @Test("the dictionary is SPDY/3's: 1423 bytes from \"\\0\\0\\0\\x07options\" to \",enq=0.\"")
    func dictionary() {
        #expect(SPDYDictionary.bytes.count == 1423)
        #expect(Array(SPDYDictionary.bytes.prefix(11)) == [0, 0, 0, 7] + Array("options".utf8))
        #expect(Array(SPDYDictionary.bytes.suffix(7)) == Array(",enq=0.".utf8))
    }

    @Test("every frame type round-trips through the decoder, in slices of any size")
    func frameRoundTrip() throws {
        let frames: [SPDYFrame] = [
            .synStream(streamID: 1, associatedID: 0, priority: 2, flags: 0, headerBlock: [1, 2, 3]),
            .synReply(streamID: 1, flags: 0, headerBlock: [4, 5]),
            .data(streamID: 3, flags: SPDYFrame.flagFin, payload: ByteBuffer(string: "payload")),
            .data(streamID: 3, flags: 0, payload: ByteBuffer()),
            .rstStream(streamID: 3, status: SPDYFrame.Status.cancel),
            .settings(flags: 0, payload: [0, 0, 0, 0]),
            .ping(id: 7),
            .goAway(lastGoodStreamID: 5, status: 0),
            .headers(streamID: 5, flags: 0, headerBlock: [9]),
            .windowUpdate(streamID: 5, delta: 65_536),
        ]
        var wire: [UInt8] = []
        for frame in frames { wire += frame.encoded.readableBytesView }
        for sliceSize in [1, 2, 3, 7, 64, wire.count] {
            var decoder = SPDYFrameDecoder()
            var decoded: [SPDYFrame] = []
            var offset = 0
            while offset < wire.count {
                let end = min(wire.count, offset + sliceSize)
                decoder.append(ByteBuffer(bytes: wire[offset..<end]))
                offset = end
                while let frame = try decoder.next() { decoded.append(frame) }
            }
            #expect(decoded == frames, "slice size \(sliceSize)")
        }
    }

    @Test("header blocks round-trip through one deflater and one inflater per connection")
    func headerBlocks() throws {
        let deflater = try SPDYHeaderCompression(.deflate)
        let inflater = try SPDYHeaderCompression(.inflate)
        let blocks: [[(String, String)]] = [
            [("streamtype", "error"), ("port", "80"), ("requestid", "0")],
            [("streamtype", "data"), ("port", "80"), ("requestid", "0")],
            [],
            [("streamtype", "data"), ("port", "8080"), ("requestid", "1")],
        ]
        for block in blocks {
            let compressed = try deflater.compress(SPDYHeaderBlock.encode(block))
            let headers = try SPDYHeaderBlock.decode(try inflater.decompress(compressed))
            #expect(headers == Dictionary(uniqueKeysWithValues: block))
        }
    }

    @Test("garbled input is refused with an error, never a crash")
    func garbled() throws {
        // Wrong version.
        var decoder = SPDYFrameDecoder()
        decoder.append(ByteBuffer(bytes: [0x80, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00]))
        #expect(throws: SPDYProtocolError.self) { try decoder.next() }
        // A frame longer than the limit.
        decoder = SPDYFrameDecoder()
        decoder.append(ByteBuffer(bytes: [0x00, 0x00, 0x00, 0x01, 0x00, 0xFF, 0xFF, 0xFF]))
        #expect(throws: SPDYProtocolError.self) { try decoder.next() }
        // RST_STREAM and PING of the wrong length, SYN_STREAM too short or on stream 0.
        for bytes: [UInt8] in [
            [0x80, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1],
            [0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x02, 0, 0],
            [0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1],
            [0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ] {
            decoder = SPDYFrameDecoder()
            decoder.append(ByteBuffer(bytes: bytes))
            #expect(throws: SPDYProtocolError.self) { try decoder.next() }
        }
        // Not zlib, or zlib with another dictionary.
        let inflater = try SPDYHeaderCompression(.inflate)
        #expect(throws: SPDYProtocolError.self) { try inflater.decompress([0x01, 0x02, 0x03, 0x04, 0x05]) }
        // Header blocks: truncated, absurd counts, uppercase names.
        #expect(throws: SPDYProtocolError.self) { try SPDYHeaderBlock.decode([0, 0, 0, 1, 0, 0, 0, 9, 65]) }
        #expect(throws: SPDYProtocolError.self) { try SPDYHeaderBlock.decode([0xFF, 0xFF, 0xFF, 0xFF]) }
        #expect(throws: SPDYProtocolError.self) { try SPDYHeaderBlock.decode(Array(SPDYHeaderBlock.encode([]).dropLast(1))) }
        var upper = SPDYHeaderBlock.encode([("port", "80")])
        upper[8] = UInt8(ascii: "P")
        #expect(throws: SPDYProtocolError.self) { try SPDYHeaderBlock.decode(upper) }
        // Random bytes never crash the decoder.
        var state: UInt64 = 42
        for _ in 0..<200 {
            var random: [UInt8] = []
            for _ in 0..<64 {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                random.append(UInt8(truncatingIfNeeded: state >> 33))
            }
            var fuzz = SPDYFrameDecoder()
            fuzz.append(ByteBuffer(bytes: random))
            while let _ = try? fuzz.next() {}
        }
    }
}
