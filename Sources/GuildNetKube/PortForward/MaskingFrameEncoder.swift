import NIOCore
import NIOWebSocket

/// The client side's WebSocket frame encoder for tunnels, in place of NIO's `WebSocketFrameEncoder`.
///
/// A client must mask every frame it sends (RFC 6455 §5.3). NIO's encoder masks the caller's
/// buffer one byte at a time and, because the frame still references that buffer, copies it
/// first; with the channel byte as extension data it also writes three buffers per frame. This
/// encoder writes each frame as one buffer: header, mask key, and the payload copied and masked
/// eight bytes at a time. A frame without a mask key is written unmasked.
final class MaskingFrameEncoder: ChannelOutboundHandler {
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = ByteBuffer

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = Self.unwrapOutboundIn(data)
        let extensionLength = frame.extensionData?.readableBytes ?? 0
        let payloadLength = extensionLength + frame.data.readableBytes
        var buffer = context.channel.allocator.buffer(capacity: WebSocketFrameLayout.maxHeaderLength + payloadLength)
        WebSocketFrameLayout.writeHeader(of: frame, payloadLength: payloadLength, to: &buffer)
        let payloadOffset = buffer.writerIndex - buffer.readerIndex
        if let extensionData = frame.extensionData { buffer.writeImmutableBuffer(extensionData) }
        buffer.writeImmutableBuffer(frame.data)
        if let key = frame.maskKey {
            buffer.withUnsafeMutableReadableBytes { bytes in
                WebSocketFrameLayout.mask(UnsafeMutableRawBufferPointer(rebasing: bytes[payloadOffset...]), key: key)
            }
        }
        context.write(Self.wrapOutboundOut(buffer), promise: promise)
    }
}

@available(*, unavailable)
extension MaskingFrameEncoder: Sendable {}

/// The byte layout of a WebSocket frame (RFC 6455 §5.2) and its masking.
enum WebSocketFrameLayout {
    /// Two bytes, a 64-bit length and a mask key.
    static let maxHeaderLength = 14

    static func writeHeader(of frame: WebSocketFrame, payloadLength: Int, to buffer: inout ByteBuffer) {
        var first = frame.opcode.rawValueForHeader
        if frame.fin { first |= 0x80 }
        if frame.rsv1 { first |= 0x40 }
        if frame.rsv2 { first |= 0x20 }
        if frame.rsv3 { first |= 0x10 }
        let maskBit: UInt8 = frame.maskKey == nil ? 0 : 0x80
        buffer.writeInteger(first)
        switch payloadLength {
        case ..<126:
            buffer.writeInteger(UInt8(payloadLength) | maskBit)
        case ...Int(UInt16.max):
            buffer.writeInteger(126 | maskBit)
            buffer.writeInteger(UInt16(payloadLength))
        default:
            buffer.writeInteger(127 | maskBit)
            buffer.writeInteger(UInt64(payloadLength))
        }
        if let key = frame.maskKey { buffer.writeBytes(key) }
    }

    /// XORs `bytes` with the repeating 4-byte `key`, starting at the key's byte `phase % 4`: eight
    /// bytes per step, then the tail one at a time.
    static func mask(_ bytes: UnsafeMutableRawBufferPointer, key: WebSocketMaskingKey, phase: Int = 0) {
        guard let base = bytes.baseAddress else { return }
        var keyBytes: (UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &keyBytes) { rotated in
            for index in 0..<4 { rotated[index] = key[(index + phase) % 4] }
        }
        let keyWord = withUnsafeBytes(of: keyBytes) { $0.loadUnaligned(as: UInt32.self) }
        // The key repeated over eight bytes, in memory order.
        let wide = UInt64(keyWord) | UInt64(keyWord) << 32
        let count = bytes.count
        var offset = 0
        while offset + 8 <= count {
            let word = base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            base.storeBytes(of: word ^ wide, toByteOffset: offset, as: UInt64.self)
            offset += 8
        }
        while offset < count {
            base.storeBytes(of: base.load(fromByteOffset: offset, as: UInt8.self) ^ key[(offset + phase) % 4], toByteOffset: offset, as: UInt8.self)
            offset += 1
        }
    }
}

extension WebSocketFrame {
    /// The frame's application data with its mask removed, as NIO's `unmaskedData`, but eight
    /// bytes at a time (NIO's loop goes byte by byte). KubeSim reads its clients' frames with it.
    public var unmaskedPayload: ByteBuffer {
        guard let key = maskKey else { return data }
        var payload = data
        let phase = (extensionData?.readableBytes ?? 0) % 4
        payload.withUnsafeMutableReadableBytes { WebSocketFrameLayout.mask($0, key: key, phase: phase) }
        return payload
    }
}

extension WebSocketOpcode {
    /// The opcode's four bits.
    fileprivate var rawValueForHeader: UInt8 {
        UInt8(webSocketOpcode: self) & 0x0F
    }
}
