import GuildNetKube
import NIOCore
import NIOWebSocket

/// The kubelet's WebSocket port-forward (`v4.channel.k8s.io`): every binary message is one channel
/// byte plus payload; port index i has data channel 2i and error channel 2i+1. The server first
/// sends `[channel, port & 0xFF, port >> 8]` on each of them; the client writes only on 2i. A dial
/// failure is text on 2i+1. The connection closes once every port's pod side has ended. One
/// WebSocket is one tunnel.
struct ChannelPortForwardSession {
    let dialer: PodDialer
    let control: TunnelControl
    let ports: [Int]

    /// How long the server waits for the client's close frame after its own.
    static let closeTimeout: Duration = .seconds(5)

    private enum Event: Sendable {
        case portEnded
        case clientEnded
        case closeTimedOut
    }

    func run(_ channel: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>) async throws {
        try await channel.executeThenClose { inbound, outbound in
            let writer = WebSocketFrameWriter(outbound: outbound)
            try await control.withTunnel {
                for (index, port) in ports.enumerated() {
                    for channelByte in [2 * index, 2 * index + 1] {
                        try await writer.binary(channel: channelByte, ByteBuffer(bytes: [UInt8(port & 0xFF), UInt8(port >> 8)]))
                    }
                }
                let pipes = ports.map { _ in TunnelPipe() }
                defer { for pipe in pipes { pipe.end(.cancelled) } }
                try await withThrowingTaskGroup(of: Event.self) { group in
                    for (index, port) in ports.enumerated() {
                        let pipe = pipes[index]
                        group.addTask {
                            await relay(index: index, port: port, pipe: pipe, writer: writer)
                            return .portEnded
                        }
                    }
                    group.addTask {
                        var messages = WebSocketMessages(inbound: inbound.makeAsyncIterator(), writer: writer)
                        while let message = try await messages.next() {
                            var message = message
                            guard let channelByte = message.readInteger(as: UInt8.self) else { continue }
                            let index = Int(channelByte) / 2
                            guard channelByte % 2 == 0, index < pipes.count else { continue }
                            if message.readableBytes > 0 { await pipes[index].push(message) }
                        }
                        return .clientEnded
                    }
                    var endedPorts = 0
                    events: while let event = try await group.next() {
                        switch event {
                        case .clientEnded, .closeTimedOut:
                            break events
                        case .portEnded:
                            endedPorts += 1
                            if endedPorts == ports.count {
                                // The closing handshake: the client answers the close frame (the
                                // reader then ends), or the connection is closed after a while.
                                try? await writer.close()
                                group.addTask {
                                    try await Task.sleep(for: Self.closeTimeout)
                                    return .closeTimedOut
                                }
                            }
                        }
                    }
                    // A pending read does not end on cancellation: closing the channel ends it.
                    channel.channel.close(promise: nil)
                    group.cancelAll()
                }
            }
        }
    }

    private func relay(index: Int, port: Int, pipe: TunnelPipe, writer: WebSocketFrameWriter) async {
        defer { pipe.end(.cancelled) }
        await control.pass()
        let connection: PodDialer.Connection
        do throws(PodDialError) {
            connection = try await dialer.dial(port: port)
        } catch {
            try? await writer.binary(channel: 2 * index + 1, ByteBuffer(string: error.text))
            return
        }
        try? await connection.executeThenClose { inbound, outbound in
            try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    do {
                        try await control.relayPodOutput(inbound) { try await writer.binary(channel: 2 * index, $0) }
                    } catch {}
                    return true
                }
                group.addTask {
                    while let bytes = try await pipe.pop() {
                        await control.pass()
                        try await outbound.write(bytes)
                    }
                    return false
                }
                while let podEnded = try await group.next() {
                    if podEnded { break }
                }
                group.cancelAll()
            }
        }
    }
}

/// Writes server frames (unmasked) to a WebSocket.
struct WebSocketFrameWriter: Sendable {
    let outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>

    func binary(channel: Int, _ payload: ByteBuffer) async throws {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(1 + payload.readableBytes)
        buffer.writeInteger(UInt8(channel))
        var payload = payload
        buffer.writeBuffer(&payload)
        try await outbound.write(WebSocketFrame(fin: true, opcode: .binary, data: buffer))
    }

    func binary(_ payload: ByteBuffer) async throws {
        try await outbound.write(WebSocketFrame(fin: true, opcode: .binary, data: payload))
    }

    func pong(_ payload: ByteBuffer) async throws {
        try await outbound.write(WebSocketFrame(fin: true, opcode: .pong, data: payload))
    }

    /// A close frame with status 1000 (normal closure).
    func close(code: UInt16 = 1000) async throws {
        var data = ByteBuffer()
        data.writeInteger(code)
        try await outbound.write(WebSocketFrame(fin: true, opcode: .connectionClose, data: data))
    }
}

/// Reassembles a WebSocket's data messages (binary, possibly fragmented); answers pings; ends on a
/// close frame (answered) or EOF. A text message is a protocol error here.
struct WebSocketMessages: PortForwardByteSource {
    var inbound: NIOAsyncChannelInboundStream<WebSocketFrame>.AsyncIterator
    let writer: WebSocketFrameWriter
    /// Deliver each frame's payload as it arrives instead of whole messages (a byte stream).
    var streaming = false
    private var partial: ByteBuffer?
    static let maximumMessage = 16 << 20

    init(inbound: NIOAsyncChannelInboundStream<WebSocketFrame>.AsyncIterator, writer: WebSocketFrameWriter, streaming: Bool = false) {
        self.inbound = inbound
        self.writer = writer
        self.streaming = streaming
    }

    mutating func next() async throws -> ByteBuffer? {
        while let frame = try await inbound.next() {
            switch frame.opcode {
            case .ping:
                try await writer.pong(frame.unmaskedPayload)
            case .pong:
                continue
            case .connectionClose:
                try? await writer.close()
                return nil
            case .text:
                throw SPDYProtocolError("text message on a binary port-forward WebSocket")
            case .binary, .continuation:
                if frame.opcode == .continuation && partial == nil && !streaming {
                    throw SPDYProtocolError("continuation frame without a message")
                }
                let data = frame.unmaskedPayload
                if streaming { return data }
                var message = partial ?? ByteBuffer()
                var data2 = data
                message.writeBuffer(&data2)
                guard message.readableBytes <= Self.maximumMessage else { throw SPDYProtocolError("message too large") }
                if frame.fin {
                    partial = nil
                    return message
                }
                partial = message
            default:
                throw SPDYProtocolError("unknown WebSocket opcode")
            }
        }
        return nil
    }
}
