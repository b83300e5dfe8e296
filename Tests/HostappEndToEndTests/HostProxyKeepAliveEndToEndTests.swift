import Foundation
import GuildNetCore
import GuildNetSimulators
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TestSupport
import Testing

/// The host proxy keeps connections alive on both sides: many requests on one client connection,
/// relayed over the cluster's pooled connections; its own refusals keep the connection too.
@Suite("hostapp host proxy keep-alive", .serialized)
struct HostProxyKeepAliveEndToEndTests {
    typealias E = SubsystemsEndToEndTests
    typealias Connection = NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>

    /// One HTTPS connection to the proxy, trusting its CA.
    static func connect(port: Int, caPEM: String) async throws -> Connection {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        let context = try NIOSSLContext(configuration: tls)
        return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                return try Connection(wrappingChannelSynchronously: channel)
            }
        }
    }

    /// Sends one request and reads its whole reply on `connection`.
    static func exchange(
        _ inbound: inout NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator, _ outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>,
        _ method: HTTPMethod, _ path: String, token: String?, body: String? = nil
    ) async throws -> (status: Int, body: String, headers: HTTPHeaders) {
        var headers = HTTPHeaders([("Host", "localhost"), ("Accept", "application/json")])
        if let token { headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(body.utf8.count))
        }
        try await outbound.write(.head(HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)))
        if let body { try await outbound.write(.body(.byteBuffer(ByteBuffer(string: body)))) }
        try await outbound.write(.end(nil))
        var status = 0
        var replyHeaders = HTTPHeaders()
        var text = ""
        while let part = try await inbound.next() {
            switch part {
            case .head(let head):
                status = Int(head.status.code)
                replyHeaders = head.headers
            case .body(let buffer): text += String(buffer: buffer)
            case .end: return (status, text, replyHeaders)
            }
        }
        throw HostError(.io, "the proxy closed the connection before the reply ended")
    }

    @Test("many requests on one connection: 200s, the API server's 404, a proxy 401 and a POST, over one pooled upstream connection")
    func manyRequestsOnOneConnection() async throws {
        var options = KubeSimOptions()
        options.simulatedPods = 2
        let simOptions = options
        try await KubeSim.withRunning(options: simOptions) { sim, endpoint in
            let dir = TemporaryDirectory("e2e-proxy-keepalive")
            defer { dir.remove() }
            try sim.writeKubeconfig(to: dir.path + "/sim.kubeconfig", endpoint: endpoint)
            let state = dir.path + "/state"
            let daemon = try HostappProcess(stateDirectory: state, extra: ["--proxy-addr", "127.0.0.1:0"])
            defer { daemon.terminate() }
            let ready = try await daemon.waitUntilReady()
            let port = try #require(ready["proxy_port"]?.stringValue.flatMap { Int($0) })
            let client = try await daemon.client()
            _ = try await E.call(
                client, "r",
                [
                    "op": "cluster.register", "cluster": "sim", "kubeconfig": .string(dir.path + "/sim.kubeconfig"),
                    "settings": ["route.probe_interval_ms": 3_600_000],
                ])
            let token = try String(contentsOfFile: state + "/proxy-token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let caPEM = try String(contentsOfFile: state + "/proxy-tls/ca.pem", encoding: .utf8)

            let connection = try await Self.connect(port: port, caPEM: caPEM)
            let upstreamBefore = ProcessResources.tcpConnections(toPort: endpoint.port, pid: daemon.pid)
            try await connection.executeThenClose { inbound, outbound in
                var replies = inbound.makeAsyncIterator()
                for _ in 0..<5 {
                    let list = try await Self.exchange(&replies, outbound, .GET, "/clusters/sim/api/v1/namespaces/default/pods", token: token)
                    #expect(list.status == 200)
                    #expect(list.body.contains("\"PodList\""))
                    #expect(list.body.contains("sim-"))
                }
                // The API server's own refusal passes through unchanged.
                let missing = try await Self.exchange(&replies, outbound, .GET, "/clusters/sim/api/v1/namespaces/default/pods/nope", token: token)
                #expect(missing.status == 404)
                #expect(missing.body.contains("\"NotFound\""))
                // The proxy's refusal (no token) keeps the connection; nothing reaches the cluster.
                let requestsBefore = await sim.requestCount
                let refused = try await Self.exchange(&replies, outbound, .GET, "/clusters/sim/api/v1/pods", token: nil)
                #expect(refused.status == 401)
                #expect(await sim.requestCount == requestsBefore)
                // A request body is relayed.
                let created = try await Self.exchange(
                    &replies, outbound, .POST, "/clusters/sim/api/v1/namespaces/default/configmaps", token: token,
                    body: #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"kept-alive"},"data":{"k":"v"}}"#)
                #expect(created.status == 201, "\(created.body)")
                let stored = try await sim.get(.configmaps, namespace: "default", name: "kept-alive")
                #expect(stored["data"]?["k"] == "v")
                // An unknown cluster: 404 from the proxy, the connection still serves.
                let unknown = try await Self.exchange(&replies, outbound, .GET, "/clusters/nope/api/v1/pods", token: token)
                #expect(unknown.status == 404)
                let last = try await Self.exchange(&replies, outbound, .GET, "/clusters/sim/version", token: token)
                #expect(last.status == 200)
            }
            // Requests one after another reused one upstream connection of the cluster's pool.
            let upstreamAfter = ProcessResources.tcpConnections(toPort: endpoint.port, pid: daemon.pid)
            #expect(upstreamAfter - upstreamBefore <= 1, "before \(upstreamBefore), after \(upstreamAfter)")
            await client.close()
        }
    }
}
