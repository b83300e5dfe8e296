import Foundation
import GuildNetCore
import GuildNetKube
import GuildNetSimulators
import TestSupport
import Testing

/// Every way of authenticating, over real TLS against KubeSim, and the typed errors of refusals.
@Suite("Kube client auth and errors", .serialized)
struct KubeAuthTests {
    typealias S = KubeTestSupport

    /// An exec plugin script: prints `credential` (an ExecCredential status object) and appends a line
    /// to `runs` per run; with `firstCredential`, the first run prints that instead.
    static func execConfig(
        in dir: TemporaryDirectory, status: JSONValue, firstStatus: JSONValue? = nil
    ) throws -> KubeconfigDocument.ExecConfig {
        func credential(_ status: JSONValue) -> String {
            JSONValue.object(["kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1", "status": status]).jsonString
        }
        let runs = dir.appending("runs")
        let script = dir.appending("plugin.sh")
        var text = "#!/bin/sh\necho run >> '\(runs)'\n"
        if let firstStatus {
            text += "if [ \"$(wc -l < '\(runs)')\" -le 1 ]; then\ncat <<'EOF'\n\(credential(firstStatus))\nEOF\nexit 0\nfi\n"
        }
        text += "cat <<'EOF'\n\(credential(status))\nEOF\n"
        try text.write(toFile: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: script)
        var exec = KubeconfigDocument.ExecConfig()
        exec.apiVersion = "client.authentication.k8s.io/v1"
        exec.command = script
        exec.interactiveMode = "Never"
        return exec
    }

    @Test("client certificate, bearer token and token file authenticate", arguments: ["cert", "token", "tokenFile"])
    func staticCredentials(kind: String) async throws {
        try await KubeSim.withRunning { sim, endpoint in
            var config = try S.config(sim, endpoint, user: kind == "cert" ? .clientCertificate : .token)
            let dir = TemporaryDirectory("kube-auth")
            defer { dir.remove() }
            if kind == "tokenFile" {
                let path = dir.appending("token")
                try (sim.options.token + "\n").write(toFile: path, atomically: true, encoding: .utf8)
                config.credentials = .tokenFile(path)
            }
            try await S.withClient(config) { client in
                let list = try await client.listAll(.namespaces)
                #expect(list.items.count == 4)
                #expect(client.stats.failures == 0)
            }
        }
    }

    // A wrong tls-server-name cannot be shown refused here: NIOSSL also accepts a certificate whose IP
    // SAN matches the peer address, and the sim's certificate names 127.0.0.1.
    @Test("TLS: tls-server-name is sent and verified; insecure-skip-tls-verify; an unknown CA is refused")
    func tlsVariants() async throws {
        try await KubeSim.withRunning { sim, endpoint in
            // The certificate names localhost and 127.0.0.1: reach 127.0.0.1 but verify as localhost.
            var named = try S.config(sim, endpoint)
            named.tlsServerName = "localhost"
            try await S.withClient(named) { client in
                let version = try await client.rawGETJSON("/version")
                #expect(version["major"] == "1")
            }
            var insecure = try S.config(sim, endpoint)
            insecure.caPEM = nil
            insecure.insecureSkipTLSVerify = true
            try await S.withClient(insecure) { client in
                let version = try await client.rawGETJSON("/version")
                #expect(version["major"] == "1")
            }
            var systemRoots = try S.config(sim, endpoint)
            systemRoots.caPEM = nil
            try await S.withClient(systemRoots) { client in
                do {
                    _ = try await client.rawGET("/version")
                    Issue.record("a server signed by an unknown CA was trusted")
                } catch let error as HostError {
                    #expect(error.code == .k8sTransport)
                    #expect(error.transient)
                }
            }
            var garbageCA = try S.config(sim, endpoint)
            garbageCA.caPEM = Array("not a certificate".utf8)
            #expect(throws: HostError.self) { _ = try KubeClient.make(config: garbageCA, logger: S.quietLogger) }
        }
    }

    @Test("an exec plugin's token is cached: one run across many requests and a watch")
    func execTokenCached() async throws {
        try await KubeSim.withRunning { sim, endpoint in
            let dir = TemporaryDirectory("kube-exec")
            defer { dir.remove() }
            var config = try S.config(sim, endpoint)
            config.credentials = .exec(try Self.execConfig(in: dir, status: ["token": .string(sim.options.token)]))
            try await S.withClient(config) { client in
                for _ in 0..<20 { _ = try await client.list(.pods, namespace: "default") }
                let stream = try await client.watch(.pods, namespace: "default", timeoutSeconds: 1)
                for try await _ in stream {}
                #expect(await client.execPluginRuns == 1)
                let runs = try String(contentsOfFile: dir.appending("runs"), encoding: .utf8)
                #expect(runs.split(separator: "\n").count == 1)
            }
        }
    }

    @Test("a 401 drops the exec credential and retries once with a fresh one")
    func execRefreshOn401() async throws {
        try await KubeSim.withRunning { sim, endpoint in
            let dir = TemporaryDirectory("kube-exec")
            defer { dir.remove() }
            var config = try S.config(sim, endpoint)
            config.credentials = .exec(
                try Self.execConfig(in: dir, status: ["token": .string(sim.options.token)], firstStatus: ["token": "stale-token"]))
            try await S.withClient(config) { client in
                let version = try await client.rawGETJSON("/version")
                #expect(version["major"] == "1")
                #expect(await client.execPluginRuns == 2)
                #expect(client.stats.retries == 1)
                _ = try await client.rawGET("/version")
                #expect(await client.execPluginRuns == 2)
            }
        }
    }

    @Test("an exec plugin's client certificate authenticates")
    func execClientCertificate() async throws {
        try await KubeSim.withRunning { sim, endpoint in
            let dir = TemporaryDirectory("kube-exec")
            defer { dir.remove() }
            var config = try S.config(sim, endpoint)
            config.credentials = .exec(
                try Self.execConfig(
                    in: dir,
                    status: ["clientCertificateData": .string(sim.pki.clientCertificatePEM), "clientKeyData": .string(sim.pki.clientKeyPEM)]))
            try await S.withClient(config) { client in
                for _ in 0..<5 { _ = try await client.list(.namespaces) }
                #expect(await client.execPluginRuns == 1)
            }
        }
    }

    @Test(
        "refusals decode to typed errors",
        arguments: [
            (KubeSimUser.wrongToken, ErrorCode.k8sUnauthorized),
            (KubeSimUser.anonymous, ErrorCode.k8sUnauthorized),
            (KubeSimUser.forbiddenToken, ErrorCode.k8sForbidden),
            (KubeSimUser.foreignClientCertificate, ErrorCode.k8sTransport),
        ])
    func refused(user: KubeSimUser, code: ErrorCode) async throws {
        try await S.withSimClient(user: user) { sim, _, client in
            do {
                _ = try await client.list(.pods)
                Issue.record("\(user) was accepted")
            } catch let error as HostError {
                #expect(error.code == code)
                #expect(!error.message.contains(sim.options.token))
                #expect(client.stats.lastError?.code == code)
                #expect(client.stats.failures >= 1)
            }
        }
    }

    @Test("Status replies map to error codes")
    func statusTable() async throws {
        try await S.withSimClient { sim, _, client in
            func code(_ body: () async throws -> Void) async -> ErrorCode? {
                do {
                    try await body()
                    return nil
                } catch let error as HostError {
                    return error.code
                } catch {
                    return .internalError
                }
            }
            #expect(await code { _ = try await client.get(.pods, name: "missing") } == .k8sNotFound)
            _ = try await client.create(.configmaps, ["metadata": ["name": "x"]])
            #expect(await code { _ = try await client.create(.configmaps, ["metadata": ["name": "x"]]) } == .k8sAlreadyExists)
            #expect(
                await code {
                    _ = try await client.update(.configmaps, name: "x", ["metadata": ["name": "x", "resourceVersion": "1"], "data": ["a": "b"]])
                } == .k8sConflict)
            #expect(await code { _ = try await client.create(.pods, ["metadata": [:], "spec": [:]]) } == .k8sInvalid)
            #expect(await code { _ = try await client.rawGET("/apis/apps/v1/deployments") } == .k8sNotFound)

            await sim.failNextRequests(1, status: 500)
            #expect(await code { _ = try await client.rawGET("/version") } == .k8sServerError)
            await sim.failNextRequests(1, status: 503)
            #expect(await code { _ = try await client.rawGET("/version") } == .k8sUnavailable)
            let failures = client.stats.failures
            #expect(failures == 7)
            #expect(client.stats.lastError?.transient == true)
        }
    }

    @Test("429 with Retry-After is retried after the delay, then succeeds")
    func retryAfterHonoured() async throws {
        try await S.withSimClient { sim, _, client in
            await sim.failNextRequests(2, status: 429, retryAfterSeconds: 1)
            let clock = ContinuousClock()
            let started = clock.now
            let version = try await client.rawGETJSON("/version")
            let elapsed = clock.now - started
            #expect(version["major"] == "1")
            #expect(client.stats.retries == 2)
            #expect(client.stats.requests == 3)
            #expect(elapsed >= .milliseconds(1_900))
        }
    }

    @Test("retries are bounded: the error surfaces with its Retry-After")
    func retriesBounded() async throws {
        var options = KubeClientOptions()
        options.maxRetryAfter = .milliseconds(20)
        try await S.withSimClient(options: options) { sim, _, client in
            await sim.failNextRequests(4, status: 503, retryAfterSeconds: 7)
            do {
                _ = try await client.rawGET("/version")
                Issue.record("succeeded despite 503s")
            } catch let error as HostError {
                #expect(error.code == .k8sUnavailable)
                #expect(error.transient)
                #expect(error.message.contains("retry after 7s"))
            }
            #expect(client.stats.requests == 4)
            #expect(client.stats.retries == 3)
            // A 500 without Retry-After is not retried.
            await sim.failNextRequests(1, status: 500)
            await #expect(throws: HostError.self) { _ = try await client.rawGET("/version") }
            #expect(client.stats.requests == 5)
        }
    }
}
