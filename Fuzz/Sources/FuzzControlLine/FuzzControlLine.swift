import GuildNetControl
import GuildNetCore
import NIOCore

/// libFuzzer target: the control protocol's input path without a host — bytes framed into lines by
/// `LineFrameDecoder` (as the socket and stdin transports do, with a small line limit), then each
/// line through `ControlDispatcher.validate(line:)` (parse, known op, allowed fields).
///
/// Contract: framing never throws and never yields a line over the limit, an empty line or one
/// containing "\n"; validation returns a request or an error carrying a stable `HostError` code.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzControlLine(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let first = bytes.first else { return 0 }
    // The first byte picks the chunk size, so lines also arrive split across reads.
    let chunkSize = Int(first % 64) + 1
    let maxLineBytes = 512
    var decoder = LineFrameDecoder(maxLineBytes: maxLineBytes)
    var buffer = ByteBuffer()
    var lines: [[UInt8]] = []
    var offset = 1
    func drain(last: Bool) {
        while true {
            let event: LineEvent?
            do {
                event = last ? try decoder.decodeLast(buffer: &buffer, seenEOF: true) : try decoder.decode(buffer: &buffer)
            } catch {
                preconditionFailure("LineFrameDecoder threw: \(error)")
            }
            guard let event else { return }
            switch event {
            case .line(let line):
                precondition(!line.isEmpty && line.count <= maxLineBytes && !line.contains(0x0A), "bad line framing")
                lines.append(line)
            case .oversized(let byteCount):
                precondition(byteCount > maxLineBytes, "oversized event for a line within the limit")
            }
        }
    }
    while offset < bytes.count {
        let end = min(bytes.count, offset + chunkSize)
        buffer.writeBytes(bytes[offset..<end])
        offset = end
        drain(last: false)
        buffer.discardReadBytes()
    }
    drain(last: true)
    for line in lines {
        switch ControlDispatcher.validate(line: line) {
        case .success(let request):
            precondition(request.params.fields["id"] == nil && request.params.fields["op"] == nil, "id/op left in params")
        case .failure(let failure):
            let code = failure.error.code.rawValue
            precondition(validationCodes.contains(code), "unexpected error code \(code)")
            switch failure.id {
            case .null, .string, .int: break
            default: preconditionFailure("error reply id of type \(failure.id.typeName)")
            }
        }
    }
    return 0
}

/// The only codes the validation step may produce.
let validationCodes: Set<String> = ["invalid_json", "invalid_request", "invalid_field", "missing_field", "unknown_op"]
