import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// A port-forward request that may be upgraded: the pod, the ports (WebSocket channel protocol
/// only) and the WebSocket subprotocol chosen.
struct PortForwardRequest: Sendable {
    enum Subprotocol: String, Sendable {
        /// The kubelet's channel protocol (binary).
        case channelV4 = "v4.channel.k8s.io"
        /// kubectl's SPDY/3.1 tunnelled in WebSocket binary messages.
        case spdyTunnel = "SPDY/3.1+portforward.k8s.io"
    }
    var namespace: String
    var pod: String
    var ports: [Int]
}

/// Decides, on the event loop, whether a request to `pods/{name}/portforward` is upgraded: only
/// when it authenticates (as every request), the upgrade is not refused (fault), the pod exists and
/// is `Running`, and the protocol is supported. Anything else is not upgraded and reaches the
/// HTTP responder, which answers with the Status the API server would.
struct PortForwardAdmission: Sendable {
    let options: KubeSimOptions
    let phases: PodPhaseIndex
    let control: TunnelControl

    /// The pod named by a portforward path, or nil for any other path.
    static func target(path: String) -> (namespace: String, pod: String)? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard segments.count == 7, segments[0] == "api", segments[1] == "v1", segments[2] == "namespaces", segments[4] == "pods",
            segments[6] == "portforward"
        else { return nil }
        return (segments[3], segments[5])
    }

    /// `ports` (comma list or repeated; the kubelet's own name is `port`), each 1...65535.
    static func ports(query: String?) -> [Int]? {
        guard let query, !query.isEmpty else { return nil }
        var ports: [Int] = []
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, parts[0] == "ports" || parts[0] == "port" else { continue }
            let value = parts[1].removingPercentEncoding ?? parts[1]
            for item in value.split(separator: ",") {
                guard let port = Int(item.trimmingCharacters(in: .whitespaces)), (1...65535).contains(port) else { return nil }
                ports.append(port)
            }
        }
        return ports.isEmpty ? nil : ports
    }

    /// The first subprotocol the client offers that the server supports (the order of the
    /// client's list decides, as in apimachinery's wsstream handshake): `v5.channel.k8s.io` is not
    /// supported for port-forward, so a client offering v5 then v4 gets v4.
    static func subprotocol(_ offered: [String]) -> PortForwardRequest.Subprotocol? {
        let offers = offered.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        for offer in offers {
            if let supported = PortForwardRequest.Subprotocol(rawValue: offer) { return supported }
        }
        return nil
    }

    /// Whether the request may be upgraded to a tunnel, and to what.
    func admit(_ head: HTTPRequestHead, channel: any Channel, webSocket: Bool) -> EventLoopFuture<(PortForwardRequest, PortForwardRequest.Subprotocol?)?> {
        let loop = channel.eventLoop
        let (path, query) = Self.split(head.uri)
        guard let target = Self.target(path: path), !control.refusesUpgrades,
            phases.phase(namespace: target.namespace, name: target.pod) == "Running"
        else { return loop.makeSucceededFuture(nil) }
        var chosen: PortForwardRequest.Subprotocol?
        var ports: [Int] = []
        if webSocket {
            guard let protocolChoice = Self.subprotocol(head.headers[canonicalForm: "Sec-WebSocket-Protocol"].map(String.init)) else {
                return loop.makeSucceededFuture(nil)
            }
            chosen = protocolChoice
            if protocolChoice == .channelV4 {
                guard let requested = Self.ports(query: query) else { return loop.makeSucceededFuture(nil) }
                ports = requested
            }
        } else {
            let version = head.headers["X-Stream-Protocol-Version"].flatMap { $0.split(separator: ",") }.map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard version.contains("portforward.k8s.io") else { return loop.makeSucceededFuture(nil) }
        }
        let request = PortForwardRequest(namespace: target.namespace, pod: target.pod, ports: ports)
        let admitted = (request, chosen)
        switch authenticate(head.headers) {
        case .accepted:
            return loop.makeSucceededFuture(admitted)
        case .refused:
            return loop.makeSucceededFuture(nil)
        case .needsCertificate:
            return channel.nioSSL_peerCertificate().map { certificate in certificate == nil ? nil : admitted }
                .recover { _ in nil }
        }
    }

    private enum Authentication { case accepted, refused, needsCertificate }

    /// The same rules as the responder's: a known bearer token, else a verified client certificate.
    private func authenticate(_ headers: HTTPHeaders) -> Authentication {
        guard let header = headers["Authorization"].first else { return .needsCertificate }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return .needsCertificate }
        let token = String(parts[1]).trimmingCharacters(in: .whitespaces)
        if let forbidden = options.forbiddenToken, token == forbidden { return .refused }
        return token == options.token ? .accepted : .refused
    }

    static func split(_ uri: String) -> (path: String, query: String?) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri, nil) }
        return (String(uri[..<mark]), String(uri[uri.index(after: mark)...]))
    }
}
