import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Reads a child process's output line by line on NIO's event loop.
///
/// Not with `FileHandle.readabilityHandler`: its libdispatch read source, torn down while the
/// descriptor closes, can crash the whole process in `_dispatch_event_loop_drain` on Linux
/// (swift-corelibs-foundation#5507; seen here in a test run). NIO reads the pipe with its own epoll.
enum PipeLineReader {
    /// Calls `line` for each line of `descriptor` (taken over: closed when this returns) until end
    /// of file, an error or cancellation. A line longer than `maxLineBytes` is dropped.
    static func read(descriptor: CInt, maxLineBytes: Int = 64 << 10, line: (String) async -> Void) async {
        let channel: NIOAsyncChannel<ByteBuffer, Never>
        do {
            channel = try await NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .takingOwnershipOfDescriptor(input: descriptor) { channel in
                    channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, Never>(wrappingChannelSynchronously: channel) }
                }
        } catch {
            // NIO did not take the descriptor: it is closed here.
            _ = close(descriptor)
            return
        }
        // From here NIO owns the descriptor: executeThenClose closes it, whatever ends the reading.
        try? await channel.executeThenClose { inbound in
            var pending: [UInt8] = []
            for try await buffer in inbound {
                pending += buffer.readableBytesView
                while let newline = pending.firstIndex(of: 10) {
                    await line(String(decoding: pending[..<newline], as: UTF8.self))
                    pending.removeSubrange(...newline)
                }
                if pending.count > maxLineBytes { pending.removeAll() }
            }
            if !pending.isEmpty { await line(String(decoding: pending, as: UTF8.self)) }
        }
    }
}
