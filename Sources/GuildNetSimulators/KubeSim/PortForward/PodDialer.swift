import NIOCore
import NIOPosix

/// The pod a port-forward connection reaches, and how the "kubelet" dials its container ports.
struct PodDialer: Sendable {
    let namespace: String
    let pod: String
    let backends: PodBackends

    typealias Connection = NIOAsyncChannel<ByteBuffer, ByteBuffer>

    /// The kubelet's (containerd's) text when nothing listens on `port` inside the pod, as kubectl
    /// then prints it after `an error occurred forwarding L -> R: `.
    func refusedText(port: Int) -> String {
        let sandbox = String(UInt64(truncatingIfNeeded: "\(namespace)/\(pod)".hashValue), radix: 16)
        return "error forwarding port \(port) to pod \(sandbox), uid : failed to execute portforward in network namespace "
            + "\"/var/run/netns/cni-\(sandbox)\": failed to connect to localhost:\(port) inside namespace \"\(sandbox)\", "
            + "IPv4: dial tcp4 127.0.0.1:\(port): connect: connection refused IPv6 dial tcp6 [::1]:\(port): connect: connection refused "
    }

    /// Connects to the pod's container `port`; the error's text is what the kubelet reports.
    func dial(port: Int) async throws(PodDialError) -> Connection {
        guard let local = backends.port(namespace: namespace, name: pod, containerPort: port) else {
            throw PodDialError(text: refusedText(port: port))
        }
        do {
            return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.allowRemoteHalfClosure, value: true)
                .connectTimeout(.seconds(5))
                .connect(host: "127.0.0.1", port: local) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try Connection(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                    }
                }
        } catch {
            throw PodDialError(text: refusedText(port: port))
        }
    }
}

struct PodDialError: Error, Sendable {
    var text: String
}
