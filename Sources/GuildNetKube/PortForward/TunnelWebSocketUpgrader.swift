import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// The WebSocket client upgrade of a tunnel (RFC 6455 §4.1): as NIO's
/// `NIOTypedWebSocketClientUpgrader`, but the upgraded pipeline encodes frames with
/// ``MaskingFrameEncoder`` (NIO's encoder cannot be removed from a pipeline once added).
final class TunnelWebSocketUpgrader<UpgradeResult: Sendable>: NIOTypedHTTPClientProtocolUpgrader, Sendable {
    let supportedProtocol = "websocket"
    let requiredUpgradeHeaders: [String] = []

    private let requestKey: String
    private let maxFrameSize: Int
    private let upgradePipelineHandler: @Sendable (any Channel, HTTPResponseHead) -> EventLoopFuture<UpgradeResult>

    /// - Parameters:
    ///   - maxFrameSize: the largest frame accepted from the server.
    ///   - upgradePipelineHandler: called on the event loop once the frame handlers are in place.
    init(maxFrameSize: Int, upgradePipelineHandler: @escaping @Sendable (any Channel, HTTPResponseHead) -> EventLoopFuture<UpgradeResult>) {
        var key = [UInt8](repeating: 0, count: 16)
        var generator = SystemRandomNumberGenerator()
        for index in key.indices { key[index] = generator.next() }
        requestKey = Data(key).base64EncodedString()
        self.maxFrameSize = maxFrameSize
        self.upgradePipelineHandler = upgradePipelineHandler
    }

    func addCustom(upgradeRequestHeaders: inout HTTPHeaders) {
        upgradeRequestHeaders.add(name: "Sec-WebSocket-Key", value: requestKey)
        upgradeRequestHeaders.add(name: "Sec-WebSocket-Version", value: "13")
    }

    func shouldAllowUpgrade(upgradeResponse: HTTPResponseHead) -> Bool {
        let accept = upgradeResponse.headers["Sec-WebSocket-Accept"]
        guard accept.count == 1 else { return false }
        return accept[0] == Self.acceptValue(for: requestKey)
    }

    func upgrade(channel: any Channel, upgradeResponse: HTTPResponseHead) -> EventLoopFuture<UpgradeResult> {
        channel.eventLoop.makeCompletedFuture {
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(MaskingFrameEncoder())
            try sync.addHandler(ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxFrameSize)))
            try sync.addHandler(WebSocketProtocolErrorHandler(isServer: false))
        }.flatMap {
            self.upgradePipelineHandler(channel, upgradeResponse)
        }
    }

    /// The `Sec-WebSocket-Accept` a server must answer for `key`.
    static func acceptValue(for key: String) -> String {
        Data(Insecure.SHA1.hash(data: Data((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))).base64EncodedString()
    }
}
