import NIOCore

/// One SPDY/3 frame as moby/spdystream (kubectl) writes it. Header blocks stay compressed here;
/// ``SPDYHeaderCompression`` turns them into pairs, once per frame, in arrival order.
enum SPDYFrame: Equatable, Sendable {
    case synStream(streamID: UInt32, associatedID: UInt32, priority: UInt8, flags: UInt8, headerBlock: [UInt8])
    case synReply(streamID: UInt32, flags: UInt8, headerBlock: [UInt8])
    case rstStream(streamID: UInt32, status: UInt32)
    case settings(flags: UInt8, payload: [UInt8])
    case ping(id: UInt32)
    case goAway(lastGoodStreamID: UInt32, status: UInt32)
    case headers(streamID: UInt32, flags: UInt8, headerBlock: [UInt8])
    case windowUpdate(streamID: UInt32, delta: UInt32)
    case data(streamID: UInt32, flags: UInt8, payload: ByteBuffer)
    /// A control frame of a type SPDY/3 does not define (ignored, as the spec asks).
    case unknownControl(type: UInt16)

    static let flagFin: UInt8 = 0x01
    static let version: UInt16 = 3

    /// RST_STREAM status codes (SPDY/3 §2.4.2).
    enum Status {
        static let protocolError: UInt32 = 1
        static let invalidStream: UInt32 = 2
        static let refusedStream: UInt32 = 3
        static let cancel: UInt32 = 5
        static let internalError: UInt32 = 6
    }

    /// Appends the wire form of this frame to `buffer`.
    func write(to buffer: inout ByteBuffer) {
        func control(_ type: UInt16, flags: UInt8, length: Int) {
            buffer.writeInteger(UInt16(0x8000) | Self.version)
            buffer.writeInteger(type)
            buffer.writeInteger(UInt32(flags) << 24 | UInt32(length & 0xFF_FFFF))
        }
        switch self {
        case .synStream(let id, let associated, let priority, let flags, let block):
            control(1, flags: flags, length: 10 + block.count)
            buffer.writeInteger(id & 0x7FFF_FFFF)
            buffer.writeInteger(associated & 0x7FFF_FFFF)
            buffer.writeInteger(UInt8((priority & 0x7) << 5))
            buffer.writeInteger(UInt8(0))
            buffer.writeBytes(block)
        case .synReply(let id, let flags, let block):
            control(2, flags: flags, length: 4 + block.count)
            buffer.writeInteger(id & 0x7FFF_FFFF)
            buffer.writeBytes(block)
        case .rstStream(let id, let status):
            control(3, flags: 0, length: 8)
            buffer.writeInteger(id & 0x7FFF_FFFF)
            buffer.writeInteger(status)
        case .settings(let flags, let payload):
            control(4, flags: flags, length: payload.count)
            buffer.writeBytes(payload)
        case .ping(let id):
            control(6, flags: 0, length: 4)
            buffer.writeInteger(id)
        case .goAway(let last, let status):
            control(7, flags: 0, length: 8)
            buffer.writeInteger(last & 0x7FFF_FFFF)
            buffer.writeInteger(status)
        case .headers(let id, let flags, let block):
            control(8, flags: flags, length: 4 + block.count)
            buffer.writeInteger(id & 0x7FFF_FFFF)
            buffer.writeBytes(block)
        case .windowUpdate(let id, let delta):
            control(9, flags: 0, length: 8)
            buffer.writeInteger(id & 0x7FFF_FFFF)
            buffer.writeInteger(delta & 0x7FFF_FFFF)
        case .data(let id, let flags, let payload):
            buffer.writeInteger(id & 0x7FFF_FFFF)
            buffer.writeInteger(UInt32(flags) << 24 | UInt32(payload.readableBytes & 0xFF_FFFF))
            var payload = payload
            buffer.writeBuffer(&payload)
        case .unknownControl:
            break
        }
    }

    var encoded: ByteBuffer {
        var buffer = ByteBuffer()
        write(to: &buffer)
        return buffer
    }
}

/// A malformed SPDY byte stream: the connection that sent it is closed.
struct SPDYProtocolError: Error, CustomStringConvertible, Equatable {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Reassembles SPDY frames from arbitrary slices of the byte stream (a WebSocket message or a TCP
/// read may hold part of a frame, or several).
struct SPDYFrameDecoder {
    /// Frames larger than this are refused (kubectl's are at most 32 KiB of data).
    static let maximumFrameLength = 1 << 20
    private var buffer = ByteBuffer()

    mutating func append(_ bytes: ByteBuffer) {
        var bytes = bytes
        buffer.writeBuffer(&bytes)
    }

    /// The next complete frame, or nil until more bytes arrive.
    mutating func next() throws -> SPDYFrame? {
        guard buffer.readableBytes >= 8, let first = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self),
            let second = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt32.self)
        else { return nil }
        let length = Int(second & 0xFF_FFFF)
        let flags = UInt8(second >> 24)
        guard length <= Self.maximumFrameLength else { throw SPDYProtocolError("frame of \(length) bytes is too large") }
        guard buffer.readableBytes >= 8 + length else { return nil }
        buffer.moveReaderIndex(forwardBy: 8)
        guard var body = buffer.readSlice(length: length) else { return nil }
        defer { if buffer.readerIndex > 1 << 16 { buffer.discardReadBytes() } }
        if first & 0x8000_0000 == 0 {
            return .data(streamID: first & 0x7FFF_FFFF, flags: flags, payload: body)
        }
        let version = UInt16((first >> 16) & 0x7FFF)
        guard version == SPDYFrame.version else { throw SPDYProtocolError("unsupported SPDY version \(version)") }
        let type = UInt16(first & 0xFFFF)
        func u32() throws -> UInt32 {
            guard let value = body.readInteger(as: UInt32.self) else { throw SPDYProtocolError("control frame type \(type) is too short") }
            return value
        }
        func rest() -> [UInt8] { body.readBytes(length: body.readableBytes) ?? [] }
        switch type {
        case 1:
            let id = try u32() & 0x7FFF_FFFF
            let associated = try u32() & 0x7FFF_FFFF
            guard let priority = body.readInteger(as: UInt8.self), body.readInteger(as: UInt8.self) != nil else {
                throw SPDYProtocolError("SYN_STREAM is too short")
            }
            guard id != 0 else { throw SPDYProtocolError("SYN_STREAM with stream id 0") }
            return .synStream(streamID: id, associatedID: associated, priority: priority >> 5, flags: flags, headerBlock: rest())
        case 2:
            return .synReply(streamID: try u32() & 0x7FFF_FFFF, flags: flags, headerBlock: rest())
        case 3:
            guard length == 8 else { throw SPDYProtocolError("RST_STREAM of length \(length)") }
            return .rstStream(streamID: try u32() & 0x7FFF_FFFF, status: try u32())
        case 4:
            return .settings(flags: flags, payload: rest())
        case 6:
            guard length == 4 else { throw SPDYProtocolError("PING of length \(length)") }
            return .ping(id: try u32())
        case 7:
            guard length == 8 else { throw SPDYProtocolError("GOAWAY of length \(length)") }
            return .goAway(lastGoodStreamID: try u32() & 0x7FFF_FFFF, status: try u32())
        case 8:
            return .headers(streamID: try u32() & 0x7FFF_FFFF, flags: flags, headerBlock: rest())
        case 9:
            guard length == 8 else { throw SPDYProtocolError("WINDOW_UPDATE of length \(length)") }
            return .windowUpdate(streamID: try u32() & 0x7FFF_FFFF, delta: try u32() & 0x7FFF_FFFF)
        default:
            return .unknownControl(type: type)
        }
    }
}
