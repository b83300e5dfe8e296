import NIOCore

/// One framing event produced by ``LineFrameDecoder``.
public enum LineEvent: Sendable, Equatable {
    /// A complete line without its "\n" (and without a trailing "\r").
    case line([UInt8])
    /// A line longer than the limit; its `byteCount` bytes (everything before the "\n") were discarded.
    case oversized(byteCount: Int)
}

/// Splits a byte stream into "\n"-terminated lines, never buffering more than `maxLineBytes + 1`
/// bytes of one line.
///
/// - A trailing "\r" is stripped, so "\r\n" endings work.
/// - Empty lines (after stripping "\r") are skipped.
/// - A line whose content exceeds `maxLineBytes` is not buffered: once the limit is passed its bytes are
///   discarded up to the next "\n", then one ``LineEvent/oversized(byteCount:)`` is emitted.
/// - At EOF a final unterminated line is delivered like any other line.
///
/// Public so the control-line fuzz target (Fuzz/) frames bytes exactly as the daemon does.
public struct LineFrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = LineEvent

    private static let newline = UInt8(ascii: "\n")
    private static let carriageReturn = UInt8(ascii: "\r")

    let maxLineBytes: Int
    /// How many readable bytes (from the reader index) are already known to contain no newline.
    private var scannedBytes = 0
    /// Bytes of an oversized line discarded so far; `nil` when not discarding.
    private var discardedBytes: Int?

    public init(maxLineBytes: Int) {
        self.maxLineBytes = max(1, maxLineBytes)
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> LineEvent? {
        while true {
            let view = buffer.readableBytesView
            let searchStart = view.index(view.startIndex, offsetBy: min(scannedBytes, view.count))
            guard let newlineIndex = view[searchStart...].firstIndex(of: Self.newline) else {
                consumeUnterminated(&buffer)
                return nil
            }
            let length = newlineIndex - view.startIndex
            scannedBytes = 0
            if let discarded = discardedBytes {
                discardedBytes = nil
                buffer.moveReaderIndex(forwardBy: length + 1)
                return .oversized(byteCount: discarded + length)
            }
            if let event = takeLine(&buffer, length: length, terminatorBytes: 1) {
                return event
            }
            // An empty line: skip it and look for the next one.
        }
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> LineEvent? {
        if let event = try decode(buffer: &buffer) {
            return event
        }
        guard seenEOF else { return nil }
        scannedBytes = 0
        if let discarded = discardedBytes {
            discardedBytes = nil
            let rest = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: rest)
            return .oversized(byteCount: discarded + rest)
        }
        guard buffer.readableBytes > 0 else { return nil }
        return takeLine(&buffer, length: buffer.readableBytes, terminatorBytes: 0)
    }

    /// No newline in the buffer: remember how far we looked, or start/continue discarding.
    private mutating func consumeUnterminated(_ buffer: inout ByteBuffer) {
        let readable = buffer.readableBytes
        if let discarded = discardedBytes {
            discardedBytes = discarded + readable
            buffer.moveReaderIndex(forwardBy: readable)
            scannedBytes = 0
        } else if readable > maxLineBytes + 1 {
            // Even with a trailing "\r" stripped this line is over the limit: stop buffering it.
            discardedBytes = readable
            buffer.moveReaderIndex(forwardBy: readable)
            scannedBytes = 0
        } else {
            scannedBytes = readable
        }
    }

    /// Reads `length` content bytes plus `terminatorBytes`; `nil` for an empty line.
    private func takeLine(_ buffer: inout ByteBuffer, length: Int, terminatorBytes: Int) -> LineEvent? {
        var contentLength = length
        if contentLength > 0, buffer.getInteger(at: buffer.readerIndex + contentLength - 1, as: UInt8.self) == Self.carriageReturn {
            contentLength -= 1
        }
        if contentLength > maxLineBytes {
            buffer.moveReaderIndex(forwardBy: length + terminatorBytes)
            return .oversized(byteCount: length)
        }
        let bytes = buffer.readBytes(length: contentLength) ?? []
        buffer.moveReaderIndex(forwardBy: length - contentLength + terminatorBytes)
        return bytes.isEmpty ? nil : .line(bytes)
    }
}
