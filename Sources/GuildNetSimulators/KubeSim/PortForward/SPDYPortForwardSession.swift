import NIOCore

/// Where a SPDY session's bytes come from: a raw upgraded connection or the binary messages of a
/// `SPDY/3.1+portforward.k8s.io` WebSocket. nil ends the session.
protocol PortForwardByteSource {
    mutating func next() async throws -> ByteBuffer?
}

/// The kubelet side of `kubectl port-forward` over SPDY/3.1: per local connection kubectl opens an
/// error stream and a data stream (headers `streamtype`, `port`, `requestid`); once both of a
/// `requestid` exist, the pod's container port is dialled and bytes relayed until the pod side
/// ends (data stream FIN, then error stream FIN) or kubectl resets. A dial failure is reported as
/// text on the error stream. Each stream pair is a tunnel; the session runs in the connection's task.
struct SPDYPortForwardSession {
    typealias Writer = @Sendable (SPDYFrame) async throws -> Void

    let dialer: PodDialer
    let control: TunnelControl
    let write: Writer

    private final class Pair {
        var requestID: String?
        var errorStream: UInt32?
        var dataStream: UInt32?
        var port = 0
        let pipe = TunnelPipe()
    }

    private enum RelayOutcome: Sendable {
        /// The pod side closed: FIN both streams.
        case podEnded
        /// kubectl half-closed its side: keep relaying the pod's answer.
        case peerFinished
        /// The stream was reset or the session ended.
        case reset
    }

    private enum Role {
        case data(TunnelPipe)
        case error
    }

    /// Serves until the source ends, the peer sends GOAWAY or a protocol error (thrown).
    func run(source: inout some PortForwardByteSource) async throws {
        let inflater = try SPDYHeaderCompression(.inflate)
        let deflater = try SPDYHeaderCompression(.deflate)
        var decoder = SPDYFrameDecoder()
        var pairs: [String: Pair] = [:]
        var roles: [UInt32: Role] = [:]
        var lastStreamID: UInt32 = 0
        try await withThrowingDiscardingTaskGroup { group in
            defer {
                for pair in pairs.values { pair.pipe.end(.cancelled) }
                for case .data(let pipe) in roles.values { pipe.end(.cancelled) }
            }
            reading: while let bytes = try await source.next() {
                decoder.append(bytes)
                while let frame = try decoder.next() {
                    switch frame {
                    case .synStream(let id, _, _, let flags, let block):
                        let headers = try SPDYHeaderBlock.decode(try inflater.decompress(block))
                        guard id % 2 == 1, id > lastStreamID else { throw SPDYProtocolError("stream id \(id) out of order") }
                        lastStreamID = id
                        guard let (pair, role) = Self.admit(headers: headers, streamID: id, pairs: &pairs) else {
                            try await write(.rstStream(streamID: id, status: SPDYFrame.Status.cancel))
                            continue
                        }
                        // Only data streams carry bytes for the pod (the error stream's are ignored).
                        if case .data = role, flags & SPDYFrame.flagFin == 0 { roles[id] = role }
                        try await write(.synReply(streamID: id, flags: 0, headerBlock: try deflater.compress(SPDYHeaderBlock.encode([]))))
                        if flags & SPDYFrame.flagFin != 0, case .data(let pipe) = role { pipe.end(.finished) }
                        if let errorStream = pair.errorStream, let dataStream = pair.dataStream, let requestID = pair.requestID {
                            // Complete: forget the pair (10,000 connections leave nothing behind).
                            pairs[requestID] = nil
                            let port = pair.port
                            let pipe = pair.pipe
                            group.addTask {
                                await relay(port: port, errorStream: errorStream, dataStream: dataStream, pipe: pipe)
                            }
                        }
                    case .data(let id, let flags, let payload):
                        if case .data(let pipe) = roles[id] {
                            if payload.readableBytes > 0 { await pipe.push(payload) }
                            if flags & SPDYFrame.flagFin != 0 {
                                pipe.end(.finished)
                                roles[id] = nil
                            }
                        }
                    case .rstStream(let id, _):
                        if case .data(let pipe) = roles.removeValue(forKey: id) { pipe.end(.cancelled) }
                    case .ping(let id):
                        try await write(.ping(id: id))
                    case .goAway:
                        break reading
                    case .headers(_, _, let block), .synReply(_, _, let block):
                        // Inflate anyway: the connection's zlib stream must stay in step.
                        _ = try SPDYHeaderBlock.decode(try inflater.decompress(block))
                    case .settings, .windowUpdate, .unknownControl:
                        // No flow control: spdystream (kubectl) neither sends nor honours WINDOW_UPDATE.
                        break
                    }
                }
            }
            group.cancelAll()
        }
    }

    /// Files a new stream under its `requestid`; nil when its headers are invalid (the kubelet resets it).
    private static func admit(headers: [String: String], streamID: UInt32, pairs: inout [String: Pair]) -> (Pair, Role)? {
        guard let portText = headers["port"], let port = Int(portText), (1...65535).contains(port) else { return nil }
        let requestID = headers["requestid"] ?? String(streamID / 4)
        let pair = pairs[requestID] ?? Pair()
        switch headers["streamtype"] {
        case "error":
            guard pair.errorStream == nil else { return nil }
            pair.errorStream = streamID
        case "data":
            guard pair.dataStream == nil else { return nil }
            pair.dataStream = streamID
        default:
            return nil
        }
        if pair.port != 0 && pair.port != port { return nil }
        pair.port = port
        pair.requestID = requestID
        pairs[requestID] = pair
        return (pair, headers["streamtype"] == "data" ? .data(pair.pipe) : .error)
    }

    /// One tunnel: dial, relay both ways, then FIN the data stream and the error stream.
    private func relay(port: Int, errorStream: UInt32, dataStream: UInt32, pipe: TunnelPipe) async {
        defer { pipe.end(.cancelled) }
        await control.withTunnel {
            await control.pass()
            let connection: PodDialer.Connection
            do throws(PodDialError) {
                connection = try await dialer.dial(port: port)
            } catch {
                try? await write(.data(streamID: errorStream, flags: 0, payload: ByteBuffer(string: error.text)))
                try? await write(.data(streamID: errorStream, flags: SPDYFrame.flagFin, payload: ByteBuffer()))
                try? await write(.data(streamID: dataStream, flags: SPDYFrame.flagFin, payload: ByteBuffer()))
                return
            }
            try? await connection.executeThenClose { inbound, outbound in
                try await withThrowingTaskGroup(of: RelayOutcome.self) { group in
                    group.addTask {
                        // An abrupt close of the pod side (pod deleted) ends the stream like an EOF.
                        do {
                            try await control.relayPodOutput(inbound) { try await write(.data(streamID: dataStream, flags: 0, payload: $0)) }
                        } catch {
                            if Task.isCancelled { return .reset }
                        }
                        return .podEnded
                    }
                    group.addTask {
                        do {
                            while let bytes = try await pipe.pop() {
                                await control.pass()
                                try await outbound.write(bytes)
                            }
                        } catch {
                            return .reset
                        }
                        outbound.finish()
                        return .peerFinished
                    }
                    while let outcome = try await group.next() {
                        switch outcome {
                        case .peerFinished:
                            continue
                        case .podEnded:
                            group.cancelAll()
                            try? await write(.data(streamID: dataStream, flags: SPDYFrame.flagFin, payload: ByteBuffer()))
                            try? await write(.data(streamID: errorStream, flags: SPDYFrame.flagFin, payload: ByteBuffer()))
                        case .reset:
                            group.cancelAll()
                        }
                        return
                    }
                }
            }
        }
    }
}
