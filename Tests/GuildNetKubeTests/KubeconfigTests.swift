import Foundation
import GuildNetCore
import GuildNetKube
import TestSupport
import Testing

/// Kubeconfig documents for the tests; secrets are marked so a test can grep for them.
enum Fixtures {
    static let secretToken = "tok-SECRET-7f3c"
    static let caData = Data("-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n".utf8).base64EncodedString()
    static let certData = Data("-----BEGIN CERTIFICATE-----\nCERT\n-----END CERTIFICATE-----\n".utf8).base64EncodedString()
    static let keyData = Data("-----BEGIN EC PRIVATE KEY-----\nKEY-SECRET\n-----END EC PRIVATE KEY-----\n".utf8).base64EncodedString()

    static func config(cluster: String = "", user: String = "", context: String = "", current: String = "prod") -> String {
        """
        apiVersion: v1
        kind: Config
        current-context: \(current)
        clusters:
        - name: prod-cluster
          cluster:
            server: https://10.0.0.1:6443
        \(cluster)
        users:
        - name: prod-user
          user:
        \(user)
        contexts:
        - name: prod
          context:
            cluster: prod-cluster
            user: prod-user
        \(context)
        """
    }
}

@Suite("Kubeconfig")
struct KubeconfigTests {
    func resolve(_ yaml: String, context: String? = nil) throws -> KubeClusterConfig {
        try KubeClusterConfig.resolve(try KubeconfigLoader.parse(Data(yaml.utf8), source: "test"), context: context)
    }

    @Test("token, client-certificate and exec users resolve")
    func resolves() throws {
        let token = try resolve(Fixtures.config(cluster: "    certificate-authority-data: \(Fixtures.caData)", user: "    token: \(Fixtures.secretToken)"))
        #expect(token.server == "https://10.0.0.1:6443")
        #expect(token.namespace == "default")
        #expect(token.credentials == .token(Fixtures.secretToken))
        #expect(token.caPEM.map { String(decoding: $0, as: UTF8.self) }?.contains("CA") == true)

        let cert = try resolve(Fixtures.config(user: "    client-certificate-data: \(Fixtures.certData)\n    client-key-data: \(Fixtures.keyData)"))
        guard case .clientCertificate(let certificate, let key) = cert.credentials else {
            Issue.record("expected a client certificate")
            return
        }
        #expect(String(decoding: certificate, as: UTF8.self).contains("CERT"))
        #expect(String(decoding: key, as: UTF8.self).contains("KEY-SECRET"))

        let exec = try resolve(
            Fixtures.config(
                user: """
                        exec:
                          apiVersion: client.authentication.k8s.io/v1
                          command: get-token
                          args: [--cluster, prod]
                          interactiveMode: Never
                    """, context: "    namespace: apps"))
        #expect(exec.namespace == "apps")
        guard case .exec(let plugin) = exec.credentials else {
            Issue.record("expected exec")
            return
        }
        #expect(plugin.command == "get-token")
        #expect(plugin.args == ["--cluster", "prod"])
    }

    @Test(
        "invalid kubeconfigs name the field and never quote a secret",
        arguments: [
            (Fixtures.config(current: "nope"), "contexts"),
            (Fixtures.config(current: ""), "current-context"),
            (Fixtures.config(cluster: "    certificate-authority: /ca.pem\n    certificate-authority-data: \(Fixtures.caData)"), "certificate-authority"),
            (Fixtures.config(cluster: "    certificate-authority-data: \(Fixtures.caData)\n    insecure-skip-tls-verify: true"), "insecure-skip-tls-verify"),
            (Fixtures.config(cluster: "    certificate-authority-data: '!!notbase64'"), "certificate-authority-data"),
            (Fixtures.config(cluster: "    proxy-url: ftp://proxy"), "proxy-url"),
            (Fixtures.config(user: "    client-certificate-data: \(Fixtures.certData)"), "client-key"),
            (Fixtures.config(user: "    client-key-data: \(Fixtures.keyData)"), "client-certificate"),
            (Fixtures.config(user: "    token: \(Fixtures.secretToken)\n    username: admin\n    password: pw"), "token"),
            (Fixtures.config(user: "    tokenFile: /nonexistent/token"), "tokenFile"),
            (Fixtures.config(user: "    auth-provider:\n      name: gcp"), "auth-provider"),
            (Fixtures.config(user: "    exec:\n      command: x"), "exec.apiVersion"),
            (Fixtures.config(user: "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: x"), "exec.interactiveMode"),
            (Fixtures.config(user: "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1"), "exec.command"),
            (Fixtures.config(user: "    token: \(Fixtures.secretToken)", context: "    namespace: Not_A_Label"), "namespace"),
            ("clusters: 5", "clusters"),
            ("clusters:\n- name: a\n  cluster:\n    server: [1, 2]\nusers: []\ncontexts: []", "server"),
        ].map(InvalidKubeconfig.init))
    func invalid(_ sample: InvalidKubeconfig) {
        let (yaml, field) = (sample.yaml, sample.field)
        do {
            _ = try resolve(yaml)
            Issue.record("accepted an invalid kubeconfig (expected an error about \(field))")
        } catch let error as HostError {
            #expect(error.code == .kubeconfigInvalid)
            #expect(error.message.contains(field), "\(error.message)")
            #expect(!error.message.contains(Fixtures.secretToken))
            #expect(!error.message.contains(Fixtures.keyData))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test("a server without https or a host is refused", arguments: ["10.0.0.1:6443", "ftp://x", "https://"])
    func badServer(server: String) {
        let yaml = Fixtures.config().replacingOccurrences(of: "https://10.0.0.1:6443", with: server)
        #expect(throws: HostError.self) { try resolve(yaml) }
    }

    @Test("KUBECONFIG lists merge as kubectl does: first definition wins, relative paths resolve per file")
    func merging() throws {
        let dir = TemporaryDirectory("kc")
        defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.appending("a"), withIntermediateDirectories: true)
        try "CA-A".write(toFile: dir.appending("a/ca.pem"), atomically: true, encoding: .utf8)
        try """
        current-context: one
        clusters:
        - name: shared
          cluster: {server: "https://a.example:6443", certificate-authority: ca.pem}
        users:
        - name: u
          user: {token: first}
        contexts:
        - name: one
          context: {cluster: shared, user: u}
        """.write(toFile: dir.appending("a/config"), atomically: true, encoding: .utf8)
        try """
        current-context: two
        clusters:
        - name: shared
          cluster: {server: "https://b.example:6443"}
        - name: other
          cluster: {server: "https://c.example:6443"}
        users:
        - name: u
          user: {token: second}
        contexts:
        - name: two
          context: {cluster: other, user: u, namespace: ops}
        """.write(toFile: dir.appending("b-config"), atomically: true, encoding: .utf8)
        let merged = try KubeconfigLoader.load(list: "\(dir.appending("missing")):\(dir.appending("a/config")):\(dir.appending("b-config"))")
        #expect(merged.currentContext == "one")
        let one = try KubeClusterConfig.resolve(merged, context: nil)
        #expect(one.server == "https://a.example:6443")
        #expect(one.credentials == .token("first"))
        #expect(one.caPEM == Array("CA-A".utf8))
        let two = try KubeClusterConfig.resolve(merged, context: "two")
        #expect(two.server == "https://c.example:6443")
        #expect(two.namespace == "ops")
        #expect(throws: HostError.self) { try KubeconfigLoader.load(list: dir.appending("none")) }
        #expect(throws: HostError.self) { try KubeconfigLoader.load(path: dir.appending("none")) }
    }

    @Test("the rendered kubeconfig is self-contained and resolves to the same cluster")
    func rendering() throws {
        let dir = TemporaryDirectory("kr")
        defer { dir.remove() }
        try "CA-FILE".write(toFile: dir.appending("ca.pem"), atomically: true, encoding: .utf8)
        let yaml = Fixtures.config(
            cluster: "    certificate-authority: \(dir.appending("ca.pem"))", user: "    token: \(Fixtures.secretToken)", context: "    namespace: apps")
        let resolved = try resolve(yaml)
        let rendered = try KubeconfigLoader.renderYAML(resolved.renderedDocument())
        #expect(!rendered.contains("ca.pem"))
        let again = try resolve(rendered)
        #expect(again == resolved)
    }
}

@Suite("Exec credential plugins")
struct ExecCredentialTests {
    func plugin(_ dir: TemporaryDirectory, body: String) throws -> String {
        let path = dir.appending("plugin.sh")
        try "#!/bin/sh\necho run >> \(dir.appending("runs"))\n\(body)\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    @Test("a token is cached until it expires and refreshed after invalidate")
    func tokenCaching() async throws {
        let dir = TemporaryDirectory("ex")
        defer { dir.remove() }
        let path = try plugin(
            dir,
            body: #"""
                test -n "$KUBERNETES_EXEC_INFO" || exit 3
                echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"tok-'"$MARK"'","expirationTimestamp":"2999-01-01T00:00:00Z"}}'
                """#)
        var config = KubeconfigDocument.ExecConfig()
        config.apiVersion = "client.authentication.k8s.io/v1"
        config.command = path
        config.env = [.init(name: "MARK", value: "abc")]
        config.interactiveMode = "Never"
        let provider = ExecCredentialProvider(config: config, server: "https://x:6443", caPEM: nil)
        #expect(try await provider.credential().secret == .token("tok-abc"))
        #expect(try await provider.credential().secret == .token("tok-abc"))
        #expect(await provider.runs == 1)
        await provider.invalidate()
        _ = try await provider.credential()
        #expect(await provider.runs == 2)
        // An expired credential is fetched again.
        _ = try await provider.credential(now: Date(timeIntervalSince1970: 32_503_680_000))
        #expect(await provider.runs == 3)
    }

    @Test("a failing or lying plugin gives credential_plugin_failed without echoing its output")
    func failures() async throws {
        let dir = TemporaryDirectory("ef")
        defer { dir.remove() }
        for body in [
            "echo leaked-SECRET; exit 1", "echo '{\"kind\":\"Other\"}'",
            "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{}}'",
        ] {
            var config = KubeconfigDocument.ExecConfig()
            config.apiVersion = "client.authentication.k8s.io/v1"
            config.command = try plugin(dir, body: body)
            config.installHint = "install the plugin"
            let provider = ExecCredentialProvider(config: config, server: "https://x:6443", caPEM: nil)
            do {
                _ = try await provider.credential()
                Issue.record("plugin accepted: \(body)")
            } catch let error as HostError {
                #expect(error.code == .credentialPluginFailed)
                #expect(error.transient)
                #expect(!error.message.contains("SECRET"))
            }
        }
    }
}

/// One invalid kubeconfig and the field its error must name; shown by the field alone, so the test
/// log stays one line per case.
struct InvalidKubeconfig: Sendable, CustomTestStringConvertible {
    let yaml: String
    let field: String

    init(_ pair: (String, String)) {
        (yaml, field) = pair
    }

    var testDescription: String { "a kubeconfig with a bad \(field)" }
}
