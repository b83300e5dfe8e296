import GuildNetCore
import GuildNetKube
import NIOCore

/// libFuzzer target: a watch body through `KubeWatchDecoder` (chunked bytes → events, as
/// `KubeWatchStream` does), `ERROR` events through `KubeAPIError.fromStatusObject`, and the whole
/// input as an error reply's body through `KubeAPIError.decode` (a `Status` or not).
///
/// Contract: decoding returns events or throws `k8s_bad_response`; events have an object; a Status
/// always maps to an error with a stable code.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKubeWatch(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let first = bytes.first else { return 0 }
    // The first byte picks the chunk size, so events also arrive split across chunks.
    let chunkSize = Int(first % 64) + 1
    let request = "GET /api/v1/pods?watch=1"
    var decoder = KubeWatchDecoder(maxLineBytes: 1024, request: request)
    var offset = 1
    var events: [KubeWatchEvent] = []
    do {
        while offset < bytes.count {
            let end = min(bytes.count, offset + chunkSize)
            events += try decoder.decode(ByteBuffer(bytes: bytes[offset..<end]))
            offset = end
        }
        try decoder.finish()
    } catch {
        precondition(error.code == .k8sBadResponse, "unexpected error code \(error.code)")
    }
    for event in events {
        guard case .object = event.object else { preconditionFailure("event without an object") }
        _ = event.resourceVersion
        if event.type == .error {
            let status = KubeAPIError.fromStatusObject(event.object, request: request)
            _ = status.hostError
            _ = status.isExpired
        }
    }
    let statusCode = 400 + Int(first % 200)
    let reply = KubeAPIError.decode(statusCode: statusCode, body: Array(bytes.dropFirst()), retryAfterHeader: nil, request: request)
    precondition(reply.statusCode == statusCode, "status code changed")
    precondition(reply.retryAfterSeconds.map { $0 >= 0 } ?? true, "negative Retry-After")
    _ = reply.hostError
    return 0
}
