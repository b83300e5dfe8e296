import Foundation
import GuildNetCore
import Logging
import NIOCore
import NIOPosix
import Synchronization
import TestSupport
import Testing

@testable import GuildNetControl

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Tests of the JSON-lines transport (framing, socket and stdio servers, client).
/// Run with `swift test --skip-build --filter TransportTests`.
@Suite("TransportTests") enum TransportTests {}

// MARK: - Socket server

extension TransportTests {
    @Suite("socket server")
    struct SocketServer {
        @Test func socketFileIsPrivate() async throws {
            try await withTestServer { path, _, _ in
                var info = stat()
                #expect(lstat(path, &info) == 0)
                #expect(info.st_mode & S_IFMT == S_IFSOCK)
                #expect(info.st_mode & 0o777 == 0o600)
            }
        }

        @Test func threeClientsAtOnce() async throws {
            try await withTestServer { path, _, handler in
                try await withThrowingTaskGroup(of: String.self) { group in
                    for client in 0..<3 {
                        group.addTask {
                            let connection = try await ControlClient.connect(path: path)
                            var replies: [String] = []
                            for request in 0..<5 {
                                let id = "c\(client)-\(request)"
                                let reply = try await connection.request(#"{"id":"\#(id)","op":"echo"}"#, id: id, timeout: .seconds(10))
                                replies.append(String(decoding: reply, as: UTF8.self))
                            }
                            await connection.close()
                            return replies.joined(separator: "|")
                        }
                    }
                    var all: [String] = []
                    for try await replies in group { all.append(replies) }
                    #expect(all.count == 3)
                    for replies in all {
                        #expect(replies.split(separator: "|").count == 5)
                    }
                }
                #expect(handler.snapshot.connectionIDs.count == 3)
                try await eventually("3 connections closed") { handler.snapshot.closed.count == 3 }
            }
        }

        @Test func thousandPipelinedLinesAreAllAnswered() async throws {
            try await withTestServer { path, _, _ in
                let client = try await ControlClient.connect(path: path)
                let expected = Set((0..<1000).map { #"{"id":"\#($0)","op":"echo","pad":"\#(String(repeating: "x", count: $0 % 50))"}"# })
                let received = try await withThrowingTaskGroup(of: [String].self) { group in
                    group.addTask {
                        for line in expected { try await client.send(line) }
                        return []
                    }
                    group.addTask {
                        var lines: [String] = []
                        while lines.count < expected.count, let line = try await client.receive() {
                            lines.append(String(decoding: line, as: UTF8.self))
                        }
                        return lines
                    }
                    var all: [String] = []
                    for try await lines in group { all += lines }
                    return all
                }
                #expect(received.count == 1000)
                #expect(Set(received) == expected)
                await client.close()
            }
        }

        @Test func handlersRunConcurrentlyUpToTheCap() async throws {
            var configuration = ControlTransportConfiguration()
            configuration.maxInFlightPerConnection = 3
            let handler = EchoHandler(holdLinesStartingWith: "hold")
            try await withTestServer(configuration: configuration, handler: handler) { path, _, handler in
                let client = try await ControlClient.connect(path: path)
                for index in 0..<6 { try await client.send("hold-\(index)") }
                try await client.send("after")
                // Three held lines fill the cap; nothing else may start until they are released.
                try await eventually("3 handlers in flight") { handler.snapshot.inFlight == 3 }
                #expect(handler.snapshot.handled == 3)
                handler.release()
                var replies: [String] = []
                for _ in 0..<7 {
                    let line = try #require(try await client.receive())
                    replies.append(String(decoding: line, as: UTF8.self))
                }
                #expect(Set(replies) == Set((0..<6).map { "hold-\($0)" } + ["after"]))
                #expect(handler.snapshot.maxInFlight == 3)
                await client.close()
            }
        }

        @Test func oversizedLineIsReportedAndTheConnectionStaysUsable() async throws {
            var configuration = ControlTransportConfiguration()
            configuration.maxLineBytes = 64
            try await withTestServer(configuration: configuration) { path, _, handler in
                let client = try await ControlClient.connect(path: path)
                // Whole oversized line in one write.
                try await client.send(String(repeating: "a", count: 1000))
                #expect(try await receiveString(client) == #"{"oversized":1000}"#)
                try await client.send("still-works")
                #expect(try await receiveString(client) == "still-works")
                // Oversized line trickling in over many writes (the decoder must discard, not buffer).
                let chunk = [UInt8](repeating: UInt8(ascii: "b"), count: 50)
                for _ in 0..<40 { try await client.sendRaw(chunk) }
                try await client.sendRaw(Array("\nnext\n".utf8))
                // Pipelined lines are handled concurrently: replies may come in either order.
                #expect(try await receiveStrings(client, count: 2) == ["next", #"{"oversized":2000}"#])
                // Exactly at the limit is fine, also with "\r\n".
                let atLimit = String(repeating: "c", count: 64)
                try await client.sendRaw(Array((atLimit + "\r\n").utf8))
                #expect(try await receiveString(client) == atLimit)
                #expect(handler.snapshot.oversized == [1000, 2000])
                await client.close()
            }
        }

        @Test func lineSplitAcrossManySmallWrites() async throws {
            try await withTestServer { path, _, _ in
                let client = try await ControlClient.connect(path: path)
                let line = Array(#"{"id":"split","op":"echo","value":"abcdefghijklmnopqrstuvwxyz"}"#.utf8)
                var offset = 0
                while offset < line.count {
                    let end = min(offset + 3, line.count)
                    try await client.sendRaw(Array(line[offset..<end]))
                    offset = end
                }
                try await client.sendRaw([UInt8(ascii: "\n")])
                #expect(try await client.receive() == line)
                await client.close()
            }
        }

        @Test func crlfLineEndingsAndEmptyLines() async throws {
            try await withTestServer { path, _, handler in
                let client = try await ControlClient.connect(path: path)
                try await client.sendRaw(Array("first\r\n\r\n\nsecond\r\n".utf8))
                #expect(try await receiveStrings(client, count: 2) == ["first", "second"])
                #expect(handler.snapshot.handled == 2)
                await client.close()
            }
        }

        @Test func finalLineWithoutNewlineIsDeliveredAtEOF() async throws {
            try await withTestServer { path, _, handler in
                let client = try await ControlClient.connect(path: path)
                try await client.sendRaw(Array("one\nlast-without-newline".utf8))
                try await client.finishSending()
                #expect(try await receiveStrings(client, count: 2) == ["last-without-newline", "one"])
                #expect(try await client.receive() == nil)
                try await eventually("connection closed") { handler.snapshot.closed.count == 1 }
                await client.close()
            }
        }

        @Test func inFlightRepliesAreFlushedBeforeCloseAfterClientEOF() async throws {
            let handler = EchoHandler(holdLinesStartingWith: "hold")
            try await withTestServer(handler: handler) { path, _, handler in
                let client = try await ControlClient.connect(path: path)
                try await client.send("hold-1")
                try await client.send("hold-2")
                try await client.finishSending()
                try await eventually("both handlers in flight") { handler.snapshot.inFlight == 2 }
                #expect(handler.snapshot.closed.isEmpty)
                handler.release()
                var replies: [String] = []
                while let line = try await client.receive() { replies.append(String(decoding: line, as: UTF8.self)) }
                #expect(replies.sorted() == ["closing", "hold-1", "hold-2"].sorted())
                #expect(replies.last == "closing")
                let snapshot = handler.snapshot
                #expect(snapshot.closed.count == 1)
                #expect(snapshot.inFlightWhenClosed == [0])
                await client.close()
            }
        }

        @Test func requestBuffersUnrelatedLines() async throws {
            try await withTestServer { path, _, _ in
                let client = try await ControlClient.connect(path: path)
                try await client.send(#"{"event":"stream","n":1}"#)
                try await client.send(#"{"id":"a","op":"echo"}"#)
                let reply = try await client.request(#"{"id":"b","op":"echo"}"#, id: "b", timeout: .seconds(10))
                #expect(String(decoding: reply, as: UTF8.self) == #"{"id":"b","op":"echo"}"#)
                #expect(try await receiveStrings(client, count: 2) == [#"{"event":"stream","n":1}"#, #"{"id":"a","op":"echo"}"#])
                await client.close()
            }
        }

        @Test func requestTimesOut() async throws {
            let handler = EchoHandler(holdLinesStartingWith: "{")
            try await withTestServer(handler: handler) { path, _, handler in
                let client = try await ControlClient.connect(path: path)
                await #expect(throws: HostError.self) {
                    _ = try await client.request(#"{"id":"slow"}"#, id: "slow", timeout: .milliseconds(100))
                }
                handler.release()
                // The late reply is still delivered to a later receive().
                #expect(try await receiveString(client) == #"{"id":"slow"}"#)
                await client.close()
            }
        }

        @Test func staleSocketFileIsReplaced() async throws {
            let directory = try TransportTempDirectory()
            defer { directory.remove() }
            let path = directory.path + "/s.sock"
            try makeStaleSocketFile(at: path)
            var info = stat()
            #expect(lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK)
            try await withTestServer(path: path) { path, _, _ in
                let client = try await ControlClient.connect(path: path)
                #expect(try await client.request(#"{"id":"1"}"#, id: "1", timeout: .seconds(10)) == Array(#"{"id":"1"}"#.utf8))
                await client.close()
            }
        }

        @Test func secondServerOnTheSamePathIsRefused() async throws {
            try await withTestServer { path, _, _ in
                let second = ControlSocketServer(path: path, configuration: .init(), handler: EchoHandler(), logger: quietLogger)
                do {
                    try await second.run()
                    Issue.record("the second server started")
                } catch let error as HostError {
                    #expect(error.code == .io)
                    #expect(error.message.contains("another daemon is listening on \(path)"))
                }
                // The first server is unaffected and its socket file is still there.
                let client = try await ControlClient.connect(path: path)
                #expect(try await client.request(#"{"id":"x"}"#, id: "x", timeout: .seconds(10)) == Array(#"{"id":"x"}"#.utf8))
                await client.close()
            }
        }

        @Test func pathThatIsNotASocketIsRefused() async throws {
            let directory = try TransportTempDirectory()
            defer { directory.remove() }
            let path = directory.path + "/f.sock"
            #expect(FileManager.default.createFile(atPath: path, contents: Data("keep".utf8)))
            let server = ControlSocketServer(path: path, configuration: .init(), handler: EchoHandler(), logger: quietLogger)
            do {
                try await server.run()
                Issue.record("the server replaced a regular file")
            } catch let error as HostError {
                #expect(error.code == .io)
                #expect(error.message.contains("not a socket"))
            }
            #expect(FileManager.default.contents(atPath: path) == Data("keep".utf8))
        }

        @Test func shutdownRemovesTheSocketFileAndRefusesConnections() async throws {
            let directory = try TransportTempDirectory()
            defer { directory.remove() }
            let path = directory.path + "/d.sock"
            let openClient = try await withTestServer(path: path) { path, server, _ in
                let client = try await ControlClient.connect(path: path)
                #expect(try await client.request(#"{"id":"1"}"#, id: "1", timeout: .seconds(10)) == Array(#"{"id":"1"}"#.utf8))
                return client
            }
            #expect(access(path, F_OK) != 0)
            // The server closed the connection that was still open.
            #expect(try await openClient.receive() == nil)
            await openClient.close()
            await #expect(throws: HostError.self) {
                _ = try await ControlClient.connect(path: path)
            }
        }

        @Test func cancellingRunStopsTheServer() async throws {
            let directory = try TransportTempDirectory()
            defer { directory.remove() }
            let path = directory.path + "/k.sock"
            let server = ControlSocketServer(path: path, configuration: .init(), handler: EchoHandler(), logger: quietLogger)
            let listening = TransportSignal()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await server.run { listening.fire() } }
                try await listening.wait(timeout: .seconds(10))
                let client = try await ControlClient.connect(path: path)
                #expect(try await client.request(#"{"id":"1"}"#, id: "1", timeout: .seconds(10)) == Array(#"{"id":"1"}"#.utf8))
                group.cancelAll()
                let afterCancel = try await withDeadline(.seconds(10), "server exit after cancellation") {
                    try await client.receive()
                }
                #expect(afterCancel == nil)
                try await group.waitForAll()
                await client.close()
            }
            #expect(access(path, F_OK) != 0)
        }

        @Test func socketDescriptorsReturnToBaseline() async throws {
            let directory = try TransportTempDirectory()
            defer { directory.remove() }
            let path = directory.path + "/fd.sock"
            #expect(socketDescriptorCount(boundTo: path) == 0)
            try await withTestServer(path: path) { path, _, handler in
                #expect(socketDescriptorCount(boundTo: path) == 1)
                for cycle in 0..<20 {
                    let client = try await ControlClient.connect(path: path)
                    let id = "cycle-\(cycle)"
                    _ = try await client.request(#"{"id":"\#(id)"}"#, id: id, timeout: .seconds(10))
                    await client.close()
                }
                // Only the listener is left once the server has seen every client go away (a leaked
                // client descriptor would keep its server-side socket open too).
                try await eventually("server-side connections closed") {
                    handler.snapshot.closed.count == 20 && socketDescriptorCount(boundTo: path) == 1
                }
            }
            try await eventually("listener closed") { socketDescriptorCount(boundTo: path) == 0 }
        }
    }
}

// MARK: - Stdio server

extension TransportTests {
    @Suite("stdio server")
    struct StdioServer {
        @Test func servesAPipePairUntilEOF() async throws {
            let input = try TransportPipe()
            let output = try TransportPipe()
            let handler = EchoHandler()
            let server = ControlStdioServer(
                inputFD: input.readFD, outputFD: output.writeFD, configuration: .init(), handler: handler, logger: quietLogger
            )
            let lines = (0..<200).map { #"{"id":"\#($0)","op":"echo"}"# }
            let replies = try await withDeadline(.seconds(20), "stdio server over pipes") {
                try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
                    group.addTask {
                        try await server.run()
                        // run() returned: every reply was written; close our copy so the reader sees EOF.
                        output.closeWrite()
                        return nil
                    }
                    group.addTask {
                        try await readAll(output.readFD)
                    }
                    let payload = lines.joined(separator: "\n") + "\r\n" + "last-no-newline"
                    try writeAll(Array(payload.utf8), to: input.writeFD)
                    input.closeWrite()  // EOF ends run()
                    var collected: [UInt8] = []
                    for try await bytes in group { if let bytes { collected = bytes } }
                    return collected
                }
            }
            let replyLines = String(decoding: replies, as: UTF8.self).split(separator: "\n").map(String.init)
            #expect(Set(replyLines) == Set(lines + ["last-no-newline"]))
            #expect(replyLines.count == 201)
            #expect(handler.snapshot.closed.count == 1)
            // The caller's descriptor is still open and blocking again.
            #expect(fcntl(input.readFD, F_GETFL) & O_NONBLOCK == 0)
        }

        @Test func cancellationEndsRun() async throws {
            let input = try TransportPipe()
            let output = try TransportPipe()
            let handler = EchoHandler()
            let server = ControlStdioServer(
                inputFD: input.readFD, outputFD: output.writeFD, configuration: .init(), handler: handler, logger: quietLogger
            )
            try await withDeadline(.seconds(20), "stdio cancellation") {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await server.run() }
                    try writeAll(Array("ping\n".utf8), to: input.writeFD)
                    var received: [UInt8] = []
                    while !received.contains(UInt8(ascii: "\n")) {
                        received += try await readSome(output.readFD)
                    }
                    #expect(received == Array("ping\n".utf8))
                    group.cancelAll()
                    try await group.waitForAll()
                }
            }
            try await eventually("connection closed") { handler.snapshot.closed.count == 1 }
        }

        @Test func regularFileInputUsesTheBlockingFallback() async throws {
            let directory = try TransportTempDirectory()
            defer { directory.remove() }
            let inputPath = directory.path + "/in.jsonl"
            let outputPath = directory.path + "/out.jsonl"
            let lines = (0..<300).map { #"{"id":"\#($0)"}"# }
            #expect(FileManager.default.createFile(atPath: inputPath, contents: Data((lines.joined(separator: "\n") + "\n").utf8)))
            #expect(FileManager.default.createFile(atPath: outputPath, contents: nil))
            let inputFD = open(inputPath, O_RDONLY)
            let outputFD = open(outputPath, O_WRONLY)
            defer {
                close(inputFD)
                close(outputFD)
            }
            #expect(inputFD >= 0 && outputFD >= 0)
            let handler = EchoHandler()
            let server = ControlStdioServer(
                inputFD: inputFD, outputFD: outputFD, configuration: .init(), handler: handler, logger: quietLogger
            )
            try await withDeadline(.seconds(20), "stdio over regular files") { try await server.run() }
            let written = try String(contentsOfFile: outputPath, encoding: .utf8)
            let replyLines = written.split(separator: "\n").map(String.init)
            #expect(replyLines.count == 300)
            #expect(Set(replyLines) == Set(lines))
            #expect(handler.snapshot.closed.count == 1)
        }
    }
}

// MARK: - Framing and output queue units

extension TransportTests {
    @Suite("framing and output queue")
    struct Framing {
        private func decode(_ chunks: [String], maxLineBytes: Int = 8) throws -> [LineEvent] {
            let processor = NIOSingleStepByteToMessageProcessor(LineFrameDecoder(maxLineBytes: maxLineBytes))
            var events: [LineEvent] = []
            for chunk in chunks {
                try processor.process(buffer: ByteBuffer(string: chunk)) { events.append($0) }
            }
            try processor.finishProcessing(seenEOF: true) { events.append($0) }
            return events
        }

        private func line(_ text: String) -> LineEvent { .line(Array(text.utf8)) }

        @Test func splitsLinesAcrossChunks() throws {
            #expect(try decode(["ab", "c\nde", "f\n", "\n", "g"]) == [line("abc"), line("def"), line("g")])
        }

        @Test func stripsCarriageReturn() throws {
            #expect(try decode(["a\r\nb\r", "\n\r\n"]) == [line("a"), line("b")])
        }

        @Test func limitCountsContentWithoutCRLF() throws {
            #expect(try decode(["12345678\r\n", "123456789\n"]) == [line("12345678"), .oversized(byteCount: 9)])
        }

        @Test func oversizedLineIsDiscardedWithoutBuffering() throws {
            var decoder = LineFrameDecoder(maxLineBytes: 8)
            var buffer = ByteBuffer()
            var events: [LineEvent] = []
            for _ in 0..<1000 {
                buffer.writeString("xxxxxxxxxx")
                while let event = try decoder.decode(buffer: &buffer) { events.append(event) }
                // Never more than the limit (+1 for a possible "\r") plus one chunk is held.
                #expect(buffer.readableBytes <= 10)
            }
            buffer.writeString("yy\nok\n")
            while let event = try decoder.decode(buffer: &buffer) { events.append(event) }
            #expect(events == [.oversized(byteCount: 10_002), line("ok")])
        }

        @Test func oversizedFinalLineAtEOF() throws {
            #expect(try decode(["ok\n", "0123456789", "0123456789"]) == [line("ok"), .oversized(byteCount: 20)])
        }

        @Test func outputQueueKeepsOrderUnderBackpressure() async throws {
            let queue = OutputQueue(capacityBytes: 16)
            let output = ControlOutput(connectionID: 1, queue: queue)
            let count = 500
            let received = await withTaskGroup(of: [String].self) { group in
                group.addTask {
                    for index in 0..<count { await output.send(Array("line-\(index)".utf8)) }
                    queue.finish()
                    return []
                }
                group.addTask {
                    var lines: [String] = []
                    while let batch = await queue.nextBatch() {
                        lines += batch.map { String(decoding: $0, as: UTF8.self) }
                        await Task.yield()
                    }
                    return lines
                }
                var all: [String] = []
                for await lines in group { all += lines }
                return all
            }
            #expect(received == (0..<count).map { "line-\($0)" })
            #expect(await output.isClosed)
            // Lines sent after the end are dropped silently.
            await output.send(Array("late".utf8))
        }

        @Test func closedOutputReleasesBlockedSenders() async throws {
            let queue = OutputQueue(capacityBytes: 4)
            let output = ControlOutput(connectionID: 2, queue: queue)
            await output.send(Array("fill".utf8))
            try await withDeadline(.seconds(10), "blocked sender released") {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await output.send(Array("blocked".utf8)) }
                    group.addTask { queue.close() }
                }
            }
            #expect(await output.isClosed)
            #expect(await queue.nextBatch() == nil)
        }
    }
}

// MARK: - Helpers

private let quietLogger = Logger(label: "transport-tests") { _ in SwiftLogNoOpLogHandler() }

/// Echoes every line; answers an oversized line with `{"oversized":N}`; sends `closing` from
/// connectionClosed. Lines starting with `holdPrefix` wait for ``release()`` first.
private final class EchoHandler: ControlLineHandler {
    struct Snapshot: Sendable {
        var handled = 0
        var inFlight = 0
        var maxInFlight = 0
        var oversized: [Int] = []
        var connectionIDs: Set<UInt64> = []
        var closed: [UInt64] = []
        var inFlightWhenClosed: [Int] = []
    }

    private let state = LockedValue(Snapshot())
    private let holdPrefix: String?
    private let gate = ShutdownTrigger()

    init(holdLinesStartingWith holdPrefix: String? = nil) {
        self.holdPrefix = holdPrefix
    }

    var snapshot: Snapshot { state.withLock { $0 } }

    func release() { gate.fire() }

    func accept(line: [UInt8]) -> AcceptedLine {
        AcceptedLine { output in await self.handle(line: line, output: output) }
    }

    func handle(line: [UInt8], output: ControlOutput) async {
        state.withLock { state in
            state.handled += 1
            state.inFlight += 1
            state.maxInFlight = max(state.maxInFlight, state.inFlight)
            state.connectionIDs.insert(output.connectionID)
        }
        if let holdPrefix, line.starts(with: holdPrefix.utf8) {
            await gate.wait()
        }
        await output.send(line)
        state.withLock { $0.inFlight -= 1 }
    }

    func handleOversizedLine(byteCount: Int, output: ControlOutput) async {
        state.withLock { $0.oversized.append(byteCount) }
        await output.send(Array(#"{"oversized":\#(byteCount)}"#.utf8))
    }

    func connectionClosed(_ output: ControlOutput) async {
        state.withLock { state in
            state.closed.append(output.connectionID)
            state.inFlightWhenClosed.append(state.inFlight)
        }
        if holdPrefix != nil {
            await output.send(Array("closing".utf8))
        }
    }
}

/// Runs a socket server for the duration of `body`, then shuts it down and awaits its exit.
private func withTestServer<T: Sendable>(
    path explicitPath: String? = nil,
    configuration: ControlTransportConfiguration = .init(),
    handler: EchoHandler = EchoHandler(),
    _ body: (String, ControlSocketServer, EchoHandler) async throws -> T
) async throws -> T {
    let directory = try TransportTempDirectory()
    defer { directory.remove() }
    let path = explicitPath ?? directory.path + "/c.sock"
    let server = ControlSocketServer(path: path, configuration: configuration, handler: handler, logger: quietLogger)
    let listening = TransportSignal()
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            defer { listening.fire() }  // also unblocks the wait below when run() fails early
            try await server.run { listening.fire() }
        }
        try await listening.wait(timeout: .seconds(10))
        do {
            let result = try await body(path, server, handler)
            server.shutdown()
            try await group.waitForAll()
            return result
        } catch {
            server.shutdown()
            try? await group.waitForAll()
            throw error
        }
    }
}

private func receiveString(_ client: ControlClient) async throws -> String? {
    try await withDeadline(.seconds(10), "a reply line") {
        try await client.receive().map { String(decoding: $0, as: UTF8.self) }
    }
}

/// `count` reply lines, sorted (replies to pipelined lines may arrive in any order).
private func receiveStrings(_ client: ControlClient, count: Int) async throws -> [String] {
    var lines: [String] = []
    for _ in 0..<count {
        guard let line = try await receiveString(client) else { break }
        lines.append(line)
    }
    return lines.sorted()
}

/// A one-shot signal awaited with a timeout.
private final class TransportSignal: Sendable {
    private let trigger = ShutdownTrigger()
    func fire() { trigger.fire() }
    func wait(timeout: Duration) async throws {
        let trigger = self.trigger
        try await withDeadline(timeout, "signal") { await trigger.wait() }
    }
}

/// A short-named temporary directory under /tmp (Unix socket paths are limited to 107 bytes);
/// call ``remove()`` (in a `defer`, which also keeps it alive for the whole scope).
final class TransportTempDirectory: Sendable {
    let path: String

    init() throws {
        var template = Array("/tmp/gnt-XXXXXX".utf8CString)
        guard let created = template.withUnsafeMutableBufferPointer({ buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }) else {
            throw HostError(.io, "mkdtemp failed")
        }
        path = String(cString: created)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

final class TransportPipe: Sendable {
    let readFD: CInt
    let writeFD: CInt
    private let writeClosed = Atomic<Bool>(false)

    init() throws {
        var fds: [CInt] = [-1, -1]
        guard pipe(&fds) == 0 else { throw HostError(.io, "pipe failed") }
        readFD = fds[0]
        writeFD = fds[1]
    }

    func closeWrite() {
        if !writeClosed.exchange(true, ordering: .relaxed) { close(writeFD) }
    }

    deinit {
        close(readFD)
        closeWrite()
    }
}

func writeAll(_ bytes: [UInt8], to fd: CInt) throws {
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if written < 0 {
            if errno == EINTR || errno == EAGAIN { continue }
            throw HostError(.io, "write failed: \(errno)")
        }
        offset += written
    }
}

/// Reads `fd` to EOF on the shared thread pool.
private func readAll(_ fd: CInt) async throws -> [UInt8] {
    var collected: [UInt8] = []
    while true {
        let chunk = try await readSome(fd)
        if chunk.isEmpty { return collected }
        collected += chunk
    }
}

/// One blocking read on the shared thread pool; empty at EOF.
func readSome(_ fd: CInt) async throws -> [UInt8] {
    try await NIOThreadPool.singleton.runIfActive {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count >= 0 { return Array(buffer[0..<count]) }
            if errno != EINTR { throw HostError(.io, "read failed: \(errno)") }
        }
    }
}

/// How many of this process's descriptors are Unix sockets bound to `path`: the listener and the
/// server side of accepted connections (which report the listener's address). Each socket
/// descriptor is asked with getsockname(2), so other suites' descriptors never match and this is
/// safe while tests run in parallel.
private func socketDescriptorCount(boundTo path: String) -> Int {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return -1 }
    var count = 0
    for entry in entries {
        guard let fd = CInt(entry),
            let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + entry),
            target.hasPrefix("socket:")
        else { continue }
        if unixSocketPath(of: fd) == path { count += 1 }
    }
    return count
}

private func unixSocketPath(of fd: CInt) -> String? {
    var address = sockaddr_un()
    var length = socklen_t(MemoryLayout<sockaddr_un>.size)
    let result = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard result == 0, address.sun_family == sa_family_t(AF_UNIX) else { return nil }
    return withUnsafeBytes(of: address.sun_path) { raw in
        let bytes = raw.prefix { $0 != 0 }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }
}

/// Leaves a socket file at `path` that nobody listens on, as a crashed daemon would.
private func makeStaleSocketFile(at path: String) throws {
    #if canImport(Glibc)
    let fd = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue), 0)
    #else
    let fd = socket(AF_UNIX, SOCK_STREAM, 0)
    #endif
    guard fd >= 0 else { throw HostError(.io, "socket failed: \(errno)") }
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw HostError(.io, "path too long") }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    let result = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard result == 0 else { throw HostError(.io, "bind failed: \(errno)") }
}
