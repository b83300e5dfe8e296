import GuildNetCore
import NIOCore
import NIOWebSocket

/// One open port-forward tunnel: a WebSocket speaking the channel protocol
/// (``PortForwardProtocol``) for one port of one pod. It is used exactly once, by
/// ``relay(_:meter:)`` (carry one local connection) or ``probe(timeout:)`` (a health check),
/// either of which closes it; a tunnel never used must be closed with ``close()``.
public final class PortForwardTunnel: Sendable {
    /// The subprotocol the server chose.
    public let subprotocol: String
    /// The pod's port.
    public let port: Int
    private let channel: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>
    private let counters: KubeClientCounters
    private let closed = LockedValue(false)

    init(channel: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, subprotocol: String, port: Int, counters: KubeClientCounters) {
        self.channel = channel
        self.subprotocol = subprotocol
        self.port = port
        self.counters = counters
        counters.tunnelOpened()
    }

    /// The receive buffers of a tunnel and of the local connection it carries: reads grow up to
    /// 256 KiB under load (NIO's default stops at 64 KiB), so a bulk transfer crosses fewer reads,
    /// frames and task switches per byte.
    public static var receiveAllocator: AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 16 << 10, maximum: 256 << 10)
    }

    /// Counts bytes as they pass: `fromPod` bytes were written to the local connection,
    /// `toPod` bytes were sent into the tunnel.
    public typealias Meter = @Sendable (_ fromPod: Int, _ toPod: Int) -> Void

    /// Carries `local` through the tunnel until either side ends, then closes both. Returns
    /// normally when the pod side or the local side closed cleanly.
    ///
    /// - Throws: `k8s_port_forward_failed` with the server's error-channel text (the pod's port
    ///   refused the connection, the pod went away), or when the tunnel broke;
    ///   `CancellationError` when the calling task is cancelled (both sides are closed).
    public func relay(_ local: NIOAsyncChannel<ByteBuffer, ByteBuffer>, meter: Meter? = nil) async throws {
        defer { markClosed() }
        let port = self.port
        try await channel.executeThenClose { tunnelIn, tunnelOut in
            try await local.executeThenClose { localIn, localOut in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    // Local → pod: every local read becomes one binary message on data channel 0.
                    group.addTask {
                        for try await buffer in localIn {
                            let count = buffer.readableBytes
                            try await tunnelOut.write(Self.dataFrame(buffer))
                            meter?(0, count)
                        }
                        // The channel protocol has no half-close: the local EOF ends the tunnel.
                        try await tunnelOut.write(Self.closeFrame())
                    }
                    // Pod → local, in this task.
                    var reader = FrameReader()
                    for try await frame in tunnelIn {
                        switch try reader.read(frame) {
                        case .data(let bytes):
                            try await localOut.write(bytes)
                            meter?(bytes.readableBytes, 0)
                        case .ping(let payload):
                            try await tunnelOut.write(WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: payload))
                        case .none:
                            break
                        case .closed:
                            break
                        }
                        if reader.isClosed { break }
                    }
                    group.cancelAll()
                    if let error = reader.errorText {
                        throw HostError(.k8sPortForwardFailed, "the pod's port \(port) reported: \(error)")
                    }
                }
            }
        }
    }

    /// Checks that the tunnel reaches the pod's port: waits for the server to open both channels,
    /// then closes the tunnel and waits for the server's close, failing if the server reported an
    /// error on the way (nothing listens on the port, the pod went away).
    ///
    /// - Throws: `k8s_port_forward_failed` with the reason, or `timeout`.
    public func probe(timeout: Duration) async throws {
        defer { markClosed() }
        let port = self.port
        try await withDeadline(timeout, "probing port \(port) through the tunnel") {
            try await self.channel.executeThenClose { tunnelIn, tunnelOut in
                var reader = FrameReader()
                var sentClose = false
                for try await frame in tunnelIn {
                    if case .ping(let payload) = try reader.read(frame) {
                        try await tunnelOut.write(WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: payload))
                    }
                    if reader.errorText != nil || reader.isClosed { break }
                    if reader.channelsOpen, !sentClose {
                        sentClose = true
                        try await tunnelOut.write(Self.closeFrame())
                    }
                }
                if let error = reader.errorText {
                    throw HostError(.k8sPortForwardFailed, "the pod's port \(port) reported: \(error)")
                }
                guard reader.channelsOpen else {
                    throw HostError(.k8sPortForwardFailed, "the server closed the tunnel to port \(port) before opening it")
                }
            }
        }
    }

    /// Closes a tunnel that was not used (a tunnel must be used or closed exactly once).
    public func close() async {
        try? await channel.executeThenClose { _, _ in }
        markClosed()
    }

    private func markClosed() {
        let first = closed.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        if first { counters.tunnelClosed() }
    }

    private static func dataFrame(_ buffer: ByteBuffer) -> WebSocketFrame {
        var channelByte = ByteBuffer()
        channelByte.writeInteger(PortForwardProtocol.dataChannel(0))
        // The channel byte travels as the frame's extension data: the payload is not copied.
        return WebSocketFrame(fin: true, opcode: .binary, maskKey: .random(), data: buffer, extensionData: channelByte)
    }

    private static func closeFrame() -> WebSocketFrame {
        var payload = ByteBuffer()
        payload.write(webSocketErrorCode: .normalClosure)
        return WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: payload)
    }
}

/// Reads the server's frames of a one-port tunnel: data (channel 0) without its port prefix,
/// error text (channel 1), pings, and the close.
struct FrameReader {
    enum Item {
        case data(ByteBuffer)
        case ping(ByteBuffer)
        case closed
        case none
    }

    private var data = PortForwardChannelReader()
    private var error = PortForwardChannelReader()
    private var errorBytes: [UInt8] = []
    /// The channel of the message being continued (fragmented messages).
    private var currentChannel: UInt8?
    private(set) var isClosed = false

    /// Most error text kept.
    static let maxErrorBytes = 4096

    /// The server's error text, if it sent any.
    var errorText: String? {
        errorBytes.isEmpty ? nil : String(decoding: errorBytes, as: UTF8.self)
    }

    /// `true` once the server opened the data and error channels (their port prefixes arrived).
    var channelsOpen: Bool { data.hasPrefix && error.hasPrefix }

    mutating func read(_ frame: WebSocketFrame) throws -> Item {
        switch frame.opcode {
        case .binary, .continuation:
            var payload = frame.unmaskedData
            let channel: UInt8
            if frame.opcode == .binary {
                guard let first = payload.readInteger(as: UInt8.self) else { return .none }
                channel = first
            } else {
                guard let continued = currentChannel else {
                    throw HostError(.k8sPortForwardFailed, "the server sent a continuation frame outside a message")
                }
                channel = continued
            }
            currentChannel = frame.fin ? nil : channel
            switch channel {
            case PortForwardProtocol.dataChannel(0):
                // The hot path: after the prefix, the payload passes through without a copy.
                if data.hasPrefix { return payload.readableBytes == 0 ? .none : .data(payload) }
                let rest = data.consume(Array(payload.readableBytesView)[...])
                return rest.isEmpty ? .none : .data(ByteBuffer(bytes: rest))
            case PortForwardProtocol.errorChannel(0):
                let rest = error.consume(Array(payload.readableBytesView)[...])
                if errorBytes.count < Self.maxErrorBytes { errorBytes += rest.prefix(Self.maxErrorBytes - errorBytes.count) }
                return .none
            default:
                throw HostError(.k8sPortForwardFailed, "the server wrote on channel \(channel), which this one-port tunnel did not ask for")
            }
        case .text:
            throw HostError(.k8sPortForwardFailed, "the server sent a text frame on a binary channel tunnel")
        case .ping:
            return .ping(frame.unmaskedData)
        case .connectionClose:
            isClosed = true
            return .closed
        default:
            return .none
        }
    }
}
