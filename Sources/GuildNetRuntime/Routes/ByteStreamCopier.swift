import NIOCore

/// One direction of a relayed byte stream: copies what one channel reads to another channel's
/// writer until the reading side ends or fails (the SOCKS5 relay, the host proxy's upgrades).
public final class ByteStreamCopier: @unchecked Sendable {
    // @unchecked: `iterator` is only touched by the single task running run() (callers start one
    // task per copier and never share it); the writer is Sendable.
    private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let writer: NIOAsyncChannelOutboundWriter<ByteBuffer>

    public init(iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator, writer: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.iterator = iterator
        self.writer = writer
    }

    /// Copies until either side ends; errors end the copy (the caller closes both channels).
    public func run() async {
        do {
            while let buffer = try await iterator.next() {
                try await writer.write(buffer)
            }
        } catch {}
    }

    /// Copies bytes both ways between two connections until either side ends (the caller then
    /// closes both); `clientLeft` and `upstreamLeft` are bytes already read past a handshake.
    public static func pipe(
        clientLeft: [UInt8], clientIn: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator, clientOut: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        upstreamLeft: [UInt8], upstreamIn: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
        upstreamOut: NIOAsyncChannelOutboundWriter<ByteBuffer>
    ) async throws {
        if !clientLeft.isEmpty { try await upstreamOut.write(ByteBuffer(bytes: clientLeft)) }
        if !upstreamLeft.isEmpty { try await clientOut.write(ByteBuffer(bytes: upstreamLeft)) }
        let toUpstream = ByteStreamCopier(iterator: clientIn, writer: upstreamOut)
        let toClient = ByteStreamCopier(iterator: upstreamIn, writer: clientOut)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await toUpstream.run() }
            group.addTask { await toClient.run() }
            _ = await group.next()
            group.cancelAll()
        }
    }
}
