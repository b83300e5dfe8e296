import GuildNetCore
import NIOCore

/// What the decoder produces: one of the three handshake replies, then response frames.
enum RethinkInbound {
    case handshake([UInt8])
    case frame(RethinkFrame)
}

/// Splits the server's bytes: the first three NUL-terminated handshake messages (hello,
/// server-first, server-final, or an error before the server closes), then framed responses.
struct RethinkClientDecoder: ByteToMessageDecoder {
    typealias InboundOut = RethinkInbound

    let maxPayload: Int
    var handshakeMessagesLeft = 3

    init(maxPayload: Int) {
        self.maxPayload = maxPayload
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if handshakeMessagesLeft > 0 {
            guard let message = try RethinkHandshakeFraming.readMessage(from: &buffer) else { return .needMoreData }
            handshakeMessagesLeft -= 1
            context.fireChannelRead(wrapInboundOut(.handshake(message)))
            return .continue
        }
        guard let frame = try RethinkFrame.read(from: &buffer, maxPayload: maxPayload) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(.frame(frame)))
        return .continue
    }

    mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws
        -> DecodingState
    {
        try decode(context: context, buffer: &buffer)
    }
}

/// Delivers decoded messages into the connection's core; closing or failing fails every waiter.
final class RethinkInboundHandler: ChannelInboundHandler {
    typealias InboundIn = RethinkInbound

    private let core: RethinkConnectionCore
    private let address: RethinkAddress

    init(core: RethinkConnectionCore, address: RethinkAddress) {
        self.core = core
        self.address = address
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .handshake(let message): core.deliverHandshake(message)
        case .frame(let frame): core.deliver(frame)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        core.close(with: RethinkError.connectionLost(reason: "connection to RethinkDB at \(address) closed").hostError)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let failure: RethinkError
        switch error {
        case RethinkFrameError.tooLarge(let size):
            failure = .protocolViolation(reason: "message of \(size) bytes from \(address) exceeds the limit")
        case is ByteToMessageDecoderError:
            failure = .protocolViolation(reason: "undecodable data from \(address)")
        default:
            failure = .connectionLost(reason: "connection to RethinkDB at \(address) failed: \(error)")
        }
        core.close(with: failure.hostError)
        context.close(promise: nil)
    }
}
