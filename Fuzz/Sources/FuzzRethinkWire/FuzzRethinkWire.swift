import GuildNetCore
import GuildNetRethink
import NIOCore

/// libFuzzer target: bytes from a RethinkDB server.
///
/// - As the query phase: response frames read with `RethinkFrame.read(from:maxPayload:)` (as the
///   connection's decoder does), each payload decoded by `RethinkResponse(payload:)`.
/// - As the handshake: NUL-terminated messages split by `RethinkHandshakeFraming.readMessage`, then
///   the hello, server-first and server-final steps of `RethinkHandshake` with a fixed client nonce
///   (seeds and the dictionary carry it, so the fuzzer reaches the key derivation and signature check).
///
/// Contract: every step returns or throws its typed error (`RethinkFrameError`, `RethinkError`).
/// Server-first messages asking for more than 64 PBKDF2 iterations are skipped to keep executions
/// fast; the production bound (``RethinkHandshake/maxIterations``) is covered by unit tests.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRethinkWire(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    fuzzFrames(bytes)
    fuzzHandshake(bytes)
    return 0
}

let fuzzClientNonce = "fyko+d2lbbFgONRv9qkxdawL"
let maxFuzzIterations = 64

func fuzzFrames(_ bytes: [UInt8]) {
    var buffer = ByteBuffer(bytes: bytes)
    let maxPayload = 4096
    while true {
        let before = buffer.readableBytes
        let frame: RethinkFrame?
        do {
            frame = try RethinkFrame.read(from: &buffer, maxPayload: maxPayload)
        } catch {
            guard case .tooLarge(let length) = error, length > maxPayload else { preconditionFailure("bad frame error \(error)") }
            return
        }
        guard let frame else {
            precondition(buffer.readableBytes == before, "an incomplete frame consumed bytes")
            return
        }
        precondition(frame.payload.count <= maxPayload, "payload over the limit")
        do {
            let response = try RethinkResponse(payload: frame.payload)
            _ = response.error
            _ = response.isFeed
        } catch {
            _ = error.hostError
        }
    }
}

func fuzzHandshake(_ bytes: [UInt8]) {
    var buffer = ByteBuffer(bytes: bytes)
    var messages: [[UInt8]] = []
    while messages.count < 3 {
        do {
            guard let message = try RethinkHandshakeFraming.readMessage(from: &buffer) else { break }
            messages.append(message)
        } catch {
            return
        }
    }
    var handshake = RethinkHandshake(user: "admin", password: "pencil", clientNonce: fuzzClientNonce)
    guard messages.count >= 1 else { return }
    do {
        _ = try handshake.checkHello(messages[0])
        guard messages.count >= 2 else { return }
        if let iterations = iterationCount(messages[1]), iterations > maxFuzzIterations { return }
        let reply = try handshake.clientFinal(serverFirst: messages[1])
        precondition(reply.last == 0, "client-final without its NUL")
        guard messages.count >= 3 else { return }
        try handshake.verifyServerFinal(messages[2])
    } catch {
        _ = error.hostError
    }
}

/// The `i=` of a server-first message, when there is a numeric one.
func iterationCount(_ message: [UInt8]) -> Int? {
    guard let authentication = (try? JSONParser.parse(message))?["authentication"]?.stringValue else { return nil }
    return SCRAM.attributes(authentication)["i"].flatMap { Int($0) }
}
