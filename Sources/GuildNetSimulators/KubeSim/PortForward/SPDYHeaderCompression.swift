import CZlib

/// A SPDY/3 header block: `u32 count`, then per pair `u32 len, name, u32 len, value` (names
/// lowercase, several values NUL-joined), zlib-compressed with the SPDY dictionary.
enum SPDYHeaderBlock {
    static let maximumPairs = 1024

    static func encode(_ pairs: [(String, String)]) -> [UInt8] {
        var bytes: [UInt8] = []
        func u32(_ value: Int) {
            let v = UInt32(truncatingIfNeeded: value)
            bytes += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
        }
        u32(pairs.count)
        for (name, value) in pairs {
            let nameBytes = Array(name.lowercased().utf8)
            let valueBytes = Array(value.utf8)
            u32(nameBytes.count)
            bytes += nameBytes
            u32(valueBytes.count)
            bytes += valueBytes
        }
        return bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> [String: String] {
        var index = 0
        func u32() throws -> Int {
            guard index + 4 <= bytes.count else { throw SPDYProtocolError("truncated header block") }
            let value = Int(bytes[index]) << 24 | Int(bytes[index + 1]) << 16 | Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
            index += 4
            return value
        }
        func string() throws -> String {
            let length = try u32()
            guard length <= bytes.count - index else { throw SPDYProtocolError("truncated header block") }
            defer { index += length }
            return String(decoding: bytes[index..<index + length], as: UTF8.self)
        }
        let count = try u32()
        guard count <= maximumPairs else { throw SPDYProtocolError("header block with \(count) pairs") }
        var headers: [String: String] = [:]
        for _ in 0..<count {
            let name = try string()
            guard !name.isEmpty, name == name.lowercased() else { throw SPDYProtocolError("invalid header name \"\(name)\"") }
            let value = try string()
            guard headers[name] == nil else { throw SPDYProtocolError("duplicate header \"\(name)\"") }
            headers[name] = value
        }
        return headers
    }
}

/// zlib state for one direction of one SPDY connection: the stream spans every header block the
/// connection carries, so each connection has one inflater for the peer's blocks and one deflater
/// for its own, each preset with ``SPDYDictionary``. Not Sendable: owned by one session task.
final class SPDYHeaderCompression {
    enum Direction { case inflate, deflate }

    /// An inflated block larger than this is refused (a zip bomb in a hostile frame).
    static let maximumInflatedBlock = 256 * 1024

    /// zlib keeps a pointer back to its `z_stream`, so it lives at one fixed address.
    private let stream: UnsafeMutablePointer<z_stream>
    private let direction: Direction
    private var initialized = false

    init(_ direction: Direction) throws {
        self.direction = direction
        stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status: Int32
        switch direction {
        case .inflate:
            status = czlib_inflate_init(stream)
        case .deflate:
            status = czlib_deflate_init(stream, Z_DEFAULT_COMPRESSION)
        }
        guard status == Z_OK else { throw SPDYProtocolError("zlib init failed (\(status))") }
        initialized = true
        if direction == .deflate {
            let set = SPDYDictionary.bytes.withUnsafeBufferPointer { pointer in
                deflateSetDictionary(stream, pointer.baseAddress, UInt32(pointer.count))
            }
            guard set == Z_OK else { throw SPDYProtocolError("zlib dictionary refused (\(set))") }
        }
    }

    deinit {
        if initialized {
            switch direction {
            case .inflate: inflateEnd(stream)
            case .deflate: deflateEnd(stream)
            }
        }
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Compresses one header block, ended with a sync flush.
    func compress(_ input: [UInt8]) throws -> [UInt8] {
        precondition(direction == .deflate)
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        var input = input
        let count = input.count
        try input.withUnsafeMutableBufferPointer { inputPointer in
            stream.pointee.next_in = inputPointer.baseAddress
            stream.pointee.avail_in = UInt32(count)
            repeat {
                let produced = try chunk.withUnsafeMutableBufferPointer { chunkPointer -> Int in
                    stream.pointee.next_out = chunkPointer.baseAddress
                    stream.pointee.avail_out = UInt32(chunkPointer.count)
                    let status = deflate(stream, Z_SYNC_FLUSH)
                    guard status == Z_OK || status == Z_BUF_ERROR else { throw SPDYProtocolError("deflate failed (\(status))") }
                    return chunkPointer.count - Int(stream.pointee.avail_out)
                }
                output += chunk[0..<produced]
            } while stream.pointee.avail_out == 0
            stream.pointee.next_in = nil
        }
        return output
    }

    /// Inflates one header block (all of it: the peer sync-flushes after each).
    func decompress(_ input: [UInt8]) throws -> [UInt8] {
        precondition(direction == .inflate)
        if input.isEmpty { return [] }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        var input = input
        let count = input.count
        try input.withUnsafeMutableBufferPointer { inputPointer in
            stream.pointee.next_in = inputPointer.baseAddress
            stream.pointee.avail_in = UInt32(count)
            defer { stream.pointee.next_in = nil }
            while true {
                var status: Int32 = Z_OK
                let produced = chunk.withUnsafeMutableBufferPointer { chunkPointer -> Int in
                    stream.pointee.next_out = chunkPointer.baseAddress
                    stream.pointee.avail_out = UInt32(chunkPointer.count)
                    status = inflate(stream, Z_SYNC_FLUSH)
                    return chunkPointer.count - Int(stream.pointee.avail_out)
                }
                output += chunk[0..<produced]
                if status == Z_NEED_DICT {
                    let set = SPDYDictionary.bytes.withUnsafeBufferPointer { pointer in
                        inflateSetDictionary(stream, pointer.baseAddress, UInt32(pointer.count))
                    }
                    guard set == Z_OK else { throw SPDYProtocolError("header block uses another dictionary") }
                    continue
                }
                guard status == Z_OK || status == Z_BUF_ERROR || status == Z_STREAM_END else {
                    throw SPDYProtocolError("inflate failed (\(status))")
                }
                guard output.count <= Self.maximumInflatedBlock else { throw SPDYProtocolError("header block too large") }
                if stream.pointee.avail_in == 0 && stream.pointee.avail_out != 0 { break }
                if status == Z_BUF_ERROR && stream.pointee.avail_in == 0 { break }
                if status == Z_STREAM_END { break }
            }
        }
        return output
    }
}
