import Foundation
import GuildNetCore
import GuildNetRuntime
import NIOPosix
import TestSupport
import Testing

@testable import GuildNetControl

/// Requests pipelined on one connection right after `cluster.register` see the cluster, and
/// `cluster.unregister` waits for the earlier requests of its cluster (docs/control-protocol.md,
/// "Pipelining"). Each transport gets `PIPELINE_PAIRS` register→put pairs (default 500; the
/// acceptance run uses 10,000, about 90 s per transport in a debug build), sent without waiting.
/// Run with `swift test --skip-build --filter PipeliningTests`.
@Suite("PipeliningTests") struct PipeliningTests {
    /// 16 clusters at once, each cycling register → put → get → unregister.
    static let script: PipelineScript = {
        let pairs = Int(ProcessInfo.processInfo.environment["PIPELINE_PAIRS"] ?? "") ?? 500
        return PipelineScript(lanes: 16, rounds: max(2, pairs / 16))
    }()

    @Test func socketTransportKeepsClusterOrder() async throws {
        let script = Self.script
        let replies = try await withHostOnSocket { _, client, _ in
            try await exchange(script.lines, send: { try await client.send($0) }, receive: { try await client.receive() })
        }
        try script.check(replies)
    }

    @Test func stdioTransportKeepsClusterOrder() async throws {
        let script = Self.script
        let directory = try TransportTempDirectory()
        defer { directory.remove() }
        let input = try TransportPipe()
        let output = try TransportPipe()
        let replies = try await withRunningHost(stateDirectory: directory.path + "/state") { host in
            let dispatcher = ControlDispatcher(host: host, logger: host.configuration.logger, requestShutdown: {})
            let server = ControlStdioServer(
                inputFD: input.readFD, outputFD: output.writeFD, configuration: .init(), handler: dispatcher, logger: host.configuration.logger
            )
            return try await withThrowingTaskGroup(of: [String: JSONValue]?.self) { group in
                group.addTask {
                    try await server.run()
                    return nil
                }
                group.addTask {
                    let lines = LineReader(fd: output.readFD)
                    let replies = try await exchange(
                        script.lines,
                        send: { line in
                            try await NIOThreadPool.singleton.runIfActive { try writeAll(Array((line + "\n").utf8), to: input.writeFD) }
                        },
                        receive: { try await lines.next() }
                    )
                    input.closeWrite()  // EOF ends run()
                    return replies
                }
                var replies: [String: JSONValue] = [:]
                for try await result in group { if let result { replies = result } }
                return replies
            }
        }
        try script.check(replies)
    }
}

/// `lanes` clusters, each cycling `rounds` times through register, put `r<round>`, get the previous
/// round's key, unregister; the lanes' lines are interleaved so different clusters run concurrently.
struct PipelineScript: Sendable {
    let lanes: Int
    let rounds: Int

    var lines: [String] {
        var lines: [String] = []
        lines.reserveCapacity(lanes * rounds * 4)
        for round in 0..<rounds {
            for lane in 0..<lanes {
                let cluster = "pipe-\(lane)"
                lines.append(#"{"id":"\#(lane).\#(round).register","op":"cluster.register","cluster":"\#(cluster)"}"#)
                lines.append(#"{"id":"\#(lane).\#(round).put","op":"db.put","cluster":"\#(cluster)","key":"r\#(round)","value":\#(round)}"#)
                if round > 0 {
                    lines.append(#"{"id":"\#(lane).\#(round).get","op":"db.get","cluster":"\#(cluster)","key":"r\#(round - 1)"}"#)
                }
                lines.append(#"{"id":"\#(lane).\#(round).unregister","op":"cluster.unregister","cluster":"\#(cluster)"}"#)
            }
        }
        return lines
    }

    /// Every request succeeded, in the order the script implies.
    func check(_ replies: [String: JSONValue]) throws {
        #expect(replies.count == lanes * rounds * 4 - lanes)
        var failures: [String] = []
        var notFound = 0
        for (id, reply) in replies.sorted(by: { $0.key < $1.key }) {
            guard reply["ok"] == .bool(true), let result = reply["result"] else {
                if reply["error"]?["code"] == .string("cluster_not_found") { notFound += 1 }
                failures.append("\(id): \(reply.jsonString)")
                continue
            }
            let parts = id.split(separator: ".")
            guard parts.count == 3, let round = Int(parts[1]) else { continue }
            switch parts[2] {
            case "register" where result["created"] != .bool(true):
                failures.append("\(id): the cluster was still registered: \(result.jsonString)")
            case "get" where result["value"] != .int(Int64(round - 1)):
                failures.append("\(id): read \(result.jsonString), expected the previous round's value")
            default: break
            }
        }
        #expect(notFound == 0, "cluster_not_found replies")
        #expect(failures.isEmpty, "\(failures.count) misordered replies, first: \(failures.prefix(5))")
    }
}

/// Sends every line without waiting while reading replies; returns the replies by id.
func exchange(
    _ lines: [String],
    send: @escaping @Sendable (String) async throws -> Void,
    receive: @escaping @Sendable () async throws -> [UInt8]?
) async throws -> [String: JSONValue] {
    try await withDeadline(.seconds(300), "\(lines.count) pipelined replies") {
        try await withThrowingTaskGroup(of: [String: JSONValue].self) { group in
            group.addTask {
                for line in lines { try await send(line) }
                return [:]
            }
            group.addTask {
                var replies: [String: JSONValue] = [:]
                while replies.count < lines.count, let line = try await receive() {
                    let reply = try JSONParser.parse(line)
                    guard case .string(let id)? = reply["id"] else { throw HostError(.internalError, "reply without an id: \(reply.jsonString)") }
                    replies[id] = reply
                }
                return replies
            }
            var all: [String: JSONValue] = [:]
            for try await replies in group { all.merge(replies) { first, _ in first } }
            return all
        }
    }
}

/// Splits what a descriptor delivers into lines (reads run on the shared thread pool).
final class LineReader: Sendable {
    private struct Buffer {
        var bytes: [UInt8] = []
        var start = 0
    }

    private let fd: CInt
    private let buffer = LockedValue(Buffer())

    init(fd: CInt) { self.fd = fd }

    /// The next line without its newline; `nil` at EOF.
    func next() async throws -> [UInt8]? {
        while true {
            let line = buffer.withLock { buffer -> [UInt8]? in
                guard let newline = buffer.bytes[buffer.start...].firstIndex(of: UInt8(ascii: "\n")) else { return nil }
                defer { buffer.start = newline + 1 }
                return Array(buffer.bytes[buffer.start..<newline])
            }
            if let line { return line }
            let chunk = try await readSome(fd)
            if chunk.isEmpty { return nil }
            buffer.withLock { buffer in
                buffer.bytes.removeSubrange(..<buffer.start)
                buffer.start = 0
                buffer.bytes += chunk
            }
        }
    }
}
