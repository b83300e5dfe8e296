import Foundation
import GuildNetCore
import GuildNetSimulators
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import TestSupport

/// A minimal `v4.channel.k8s.io` port-forward client over real TLS, for testing KubeSim's endpoint.
enum PortForwardWebSocketClient {
    enum Outcome: Sendable {
        case upgraded(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, subprotocol: String?)
        case refused(status: Int, body: String)
    }

    private enum Negotiated: Sendable {
        case upgraded(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, String?)
        case refused(NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>)
    }

    /// Opens `path` (e.g. `/api/v1/namespaces/default/pods/NAME/portforward?ports=80`).
    static func open(
        sim: KubeSim, endpoint: KubeSimEndpoint, path: String, token: String? = nil,
        protocols: String = "v5.channel.k8s.io, v4.channel.k8s.io"
    ) async throws -> Outcome {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(sim.pki.caCertificatePEM.utf8), format: .pem)])
        tls.certificateVerification = .noHostnameVerification
        let context = try NIOSSLContext(configuration: tls)
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "\(endpoint.host):\(endpoint.port)")
        headers.add(name: "Authorization", value: "Bearer \(token ?? sim.options.token)")
        headers.add(name: "Sec-WebSocket-Protocol", value: protocols)
        headers.add(name: "Content-Length", value: "0")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)
        let negotiated = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: endpoint.host, port: endpoint.port) { channel in
                channel.eventLoop.makeCompletedFuture { () throws -> EventLoopFuture<Negotiated> in
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
                    let upgrader = NIOTypedWebSocketClientUpgrader<Negotiated>(
                        maxFrameSize: 1 << 20,
                        upgradePipelineHandler: { channel, response in
                            channel.eventLoop.makeCompletedFuture {
                                .upgraded(
                                    try NIOAsyncChannel(wrappingChannelSynchronously: channel),
                                    response.headers.first(name: "Sec-WebSocket-Protocol"))
                            }
                        })
                    var configuration = NIOUpgradableHTTPClientPipelineConfiguration(
                        upgradeConfiguration: NIOTypedHTTPClientUpgradeConfiguration(
                            upgradeRequestHead: head, upgraders: [upgrader],
                            notUpgradingCompletionHandler: { channel in
                                channel.eventLoop.makeCompletedFuture {
                                    .refused(try NIOAsyncChannel(wrappingChannelSynchronously: channel))
                                }
                            }))
                    configuration.leftOverBytesStrategy = .forwardBytes
                    return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(configuration: configuration)
                }
            }
        switch try await negotiated.get() {
        case .upgraded(let channel, let subprotocol):
            return .upgraded(channel, subprotocol: subprotocol)
        case .refused(let channel):
            return try await channel.executeThenClose { inbound, _ in
                var status = 0
                var body = ByteBuffer()
                for try await part in inbound {
                    switch part {
                    case .head(let head): status = Int(head.status.code)
                    case .body(var bytes): body.writeBuffer(&bytes)
                    case .end: return .refused(status: status, body: String(buffer: body))
                    }
                }
                return .refused(status: status, body: String(buffer: body))
            }
        }
    }

    /// A client frame (masked, as RFC 6455 requires).
    static func frame(channel: UInt8, _ payload: [UInt8]) -> WebSocketFrame {
        var buffer = ByteBuffer()
        buffer.writeInteger(channel)
        buffer.writeBytes(payload)
        return WebSocketFrame(fin: true, opcode: .binary, maskKey: .random(), data: buffer)
    }
}

/// Collects a port-forward WebSocket's messages by channel.
struct ChannelMessages: Sendable {
    var byChannel: [UInt8: [UInt8]] = [:]
    var firstMessages: [UInt8: [UInt8]] = [:]
    var closed = false

    mutating func add(_ frame: WebSocketFrame) {
        switch frame.opcode {
        case .binary:
            var data = frame.unmaskedData
            guard let channel = data.readInteger(as: UInt8.self) else { return }
            let payload = data.readBytes(length: data.readableBytes) ?? []
            if firstMessages[channel] == nil {
                firstMessages[channel] = payload
            } else {
                byChannel[channel, default: []] += payload
            }
        case .connectionClose:
            closed = true
        default:
            break
        }
    }
}

/// Plain TCP exchanges with a local port (kubectl's listener).
enum TCPExchange {
    /// Sends `data`, half-closes, and returns everything received until the peer closes.
    static func roundTrip(port: Int, send data: [UInt8], halfClose: Bool = true) async throws -> [UInt8] {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
                group.addTask {
                    var offset = 0
                    while offset < data.count {
                        let end = min(data.count, offset + 64 * 1024)
                        try await outbound.write(ByteBuffer(bytes: data[offset..<end]))
                        offset = end
                    }
                    if halfClose { outbound.finish() }
                    return nil
                }
                group.addTask {
                    var received: [UInt8] = []
                    for try await buffer in inbound { received += buffer.readableBytesView }
                    return received
                }
                var result: [UInt8] = []
                while let next = try await group.next() {
                    if let next { result = next }
                }
                return result
            }
        }
    }

    /// An HTTP/1.1 GET with `Connection: close`; the whole answer.
    static func httpGet(port: Int, path: String = "/") async throws -> String {
        let request = "GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        return String(decoding: try await roundTrip(port: port, send: Array(request.utf8), halfClose: false), as: UTF8.self)
    }

    /// Random bytes (deterministic per seed).
    static func payload(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &+ 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }
}

/// A raw TLS byte connection to KubeSim (for the SPDY `POST` upgrade with hand-made frames).
enum RawTLSClient {
    /// Sends `request`, then `afterResponse` once the response head arrived; returns the response
    /// head and whether the server closed the connection afterwards.
    static func exchange(sim: KubeSim, endpoint: KubeSimEndpoint, request: String, afterResponse: [UInt8]) async throws -> (head: String, closed: Bool) {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(sim.pki.caCertificatePEM.utf8), format: .pem)])
        tls.certificateVerification = .noHostnameVerification
        let context = try NIOSSLContext(configuration: tls)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: endpoint.host, port: endpoint.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: request))
            var received: [UInt8] = []
            var iterator = inbound.makeAsyncIterator()
            var head = ""
            var closed = false
            do {
                while let buffer = try await iterator.next() {
                    received += buffer.readableBytesView
                    if head.isEmpty, let range = String(decoding: received, as: UTF8.self).range(of: "\r\n\r\n") {
                        head = String(String(decoding: received, as: UTF8.self)[..<range.lowerBound])
                        try await outbound.write(ByteBuffer(bytes: afterResponse))
                    }
                }
                closed = true
            } catch {
                closed = true
            }
            return (head, closed)
        }
    }
}
