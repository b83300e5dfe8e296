import Foundation

/// Reads a child process's pipe on a thread of its own with blocking reads, handing each chunk to
/// `onData` until end of file.
///
/// Test helpers use this instead of `FileHandle.readabilityHandler`, whose libdispatch read source
/// can crash the test process in `_dispatch_event_loop_drain` when it is torn down as the
/// descriptor closes (swift-corelibs-foundation#5507; seen here in a test run). A blocking read
/// registers nothing with libdispatch. The thread ends at end of file (the child exited and the
/// parent's copy of the write end is closed, which `Process.run()` does).
public final class PipeDrain: Sendable {
    private let ended = DispatchSemaphore(value: 0)

    /// Starts draining `handle`; the returned drain tells when end of file was reached.
    @discardableResult
    public static func start(_ handle: FileHandle, onData: @escaping @Sendable (Data) -> Void) -> PipeDrain {
        let drain = PipeDrain()
        // The thread owns its own descriptor: the FileHandle may be closed or released meanwhile.
        let descriptor = dup(handle.fileDescriptor)
        guard descriptor >= 0 else {
            drain.ended.signal()
            return drain
        }
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count > 0 {
                    onData(Data(buffer[0..<count]))
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            close(descriptor)
            drain.ended.signal()
        }
        thread.name = "pipe-drain"
        thread.start()
        return drain
    }

    /// Blocks until every byte up to end of file was handed to `onData` (call it once the child
    /// exited, and not on the cooperative pool for long); `false` after `timeout`.
    public func waitForEnd(timeout: Duration = .seconds(30)) -> Bool {
        let nanoseconds = Int(timeout.components.seconds) * 1_000_000_000 + Int(timeout.components.attoseconds / 1_000_000_000)
        return ended.wait(timeout: .now() + .nanoseconds(nanoseconds)) == .success
    }
}
