import GuildNetCore
import GuildNetKube
import GuildNetRuntime
import NIOCore

extension HostProxyServer {
    /// Serves a connection whose first request asks for an upgrade (exec, attach, port-forward):
    /// the head is checked and rewritten, sent on a new connection of the cluster's client
    /// (``KubeClient/openRawConnection()``: its TLS, proxy and route), then bytes are copied both
    /// ways until either side ends. The API server's reply (101, or a refusal) passes unchanged.
    func serveUpgrade(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                var reader = ProxyHeadReader(inbound.makeAsyncIterator())
                guard let head = try await reader.readHead(limit: Self.maxHeadBytes) else { return }
                guard let request = ProxyRequestHead(head) else {
                    try await outbound.write(HostProxyStatus(400, "malformed request head").rawReply)
                    return
                }
                let cluster: KubeClient
                switch await route(request) {
                case .refused(let status):
                    try await outbound.write(status.rawReply)
                    return
                case .cluster(let client, _):
                    cluster = client
                }
                let upstream: KubeRawConnection
                do {
                    upstream = try await cluster.openRawConnection()
                } catch {
                    try await outbound.write(HostProxyStatus(502, HostError.wrapping(error, as: .k8sTransport).message).rawReply)
                    return
                }
                let rest = request.clusterPath?.1 ?? "/"
                let rewritten = request.rewrittenUpgrade(path: upstream.pathPrefix + rest, host: upstream.hostHeader, authorization: upstream.authorization)
                try await upstream.channel.executeThenClose { upIn, upOut in
                    try await upOut.write(ByteBuffer(bytes: rewritten))
                    try await ByteStreamCopier.pipe(
                        clientLeft: reader.leftover, clientIn: reader.iterator, clientOut: outbound,
                        upstreamLeft: [], upstreamIn: upIn.makeAsyncIterator(), upstreamOut: upOut)
                }
            }
        } catch {
            if !Task.isCancelled { logger.debug("host proxy upgrade ended: \(error)") }
        }
    }
}
