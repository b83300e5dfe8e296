/// The WebSocket channel protocol of `pods/{name}/portforward` (`v4.channel.k8s.io`, and
/// `v5.channel.k8s.io` which frames port-forward data the same way).
///
/// Every binary message is one channel byte followed by payload. For the i-th port of the request,
/// channel `2i` carries data and `2i+1` carries error text. The server's first message on each
/// channel starts with the port as a little-endian `UInt16`, which is not payload; the client never
/// sends that prefix. An error is text on the error channel, after which the server closes.
public enum PortForwardProtocol {
    /// The subprotocols offered, most preferred first (the server names the one it chose).
    public static let offeredSubprotocols = ["v5.channel.k8s.io", "v4.channel.k8s.io"]

    /// The data channel of the port at `index` in the request.
    public static func dataChannel(_ index: Int) -> UInt8 { UInt8(truncatingIfNeeded: 2 * index) }

    /// The error channel of the port at `index` in the request.
    public static func errorChannel(_ index: Int) -> UInt8 { UInt8(truncatingIfNeeded: 2 * index + 1) }

    /// Length of the port prefix that opens each channel.
    public static let portPrefixLength = 2

    /// The request path of a pod's port-forward endpoint.
    public static func path(namespace: String, pod: String) -> String {
        "/api/v1/namespaces/\(KubeAPIResource.escape(namespace))/pods/\(KubeAPIResource.escape(pod))/portforward"
    }

    /// Valid remote and local ports (0 is only a valid local port: it asks for an ephemeral one).
    public static let portRange: ClosedRange<Int> = 1...65_535
}

/// What arrives on one channel of a tunnel, with the port prefix stripped (see ``PortForwardProtocol``).
struct PortForwardChannelReader: Sendable {
    private var prefixRemaining = PortForwardProtocol.portPrefixLength
    private(set) var announcedPort: Int?
    private var portBytes: [UInt8] = []

    /// Strips what is left of the port prefix from `payload`; returns the payload that follows it.
    mutating func consume(_ payload: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        guard prefixRemaining > 0 else { return payload }
        let take = min(prefixRemaining, payload.count)
        portBytes.append(contentsOf: payload.prefix(take))
        prefixRemaining -= take
        if prefixRemaining == 0, portBytes.count == 2 {
            announcedPort = Int(portBytes[0]) | Int(portBytes[1]) << 8
        }
        return payload.dropFirst(take)
    }

    /// `true` once the whole prefix was seen.
    var hasPrefix: Bool { prefixRemaining == 0 }
}
