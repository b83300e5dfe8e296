import Foundation
import GuildNetCore

/// Everything needed to reach one cluster, resolved from a kubeconfig context: the API server,
/// how to trust it, and how to authenticate. File references are read and inlined, so the value
/// is self-contained (``renderedDocument()`` writes it back as a kubeconfig).
public struct KubeClusterConfig: Sendable, Equatable {
    public var contextName: String
    public var clusterName: String
    public var userName: String
    /// `https://host:port[/prefix]` (or `http://` for plain-text test servers).
    public var server: String
    public var caPEM: [UInt8]?
    public var insecureSkipTLSVerify: Bool
    public var tlsServerName: String?
    /// `http`, `https` or `socks5` proxy for this cluster only.
    public var proxyURL: String?
    /// The context's namespace, `default` when unset.
    public var namespace: String
    public var credentials: Credentials

    public enum Credentials: Sendable, Equatable {
        case none
        case token(String)
        /// A file re-read when it changes (bound service-account tokens rotate).
        case tokenFile(String)
        case clientCertificate(certificatePEM: [UInt8], keyPEM: [UInt8])
        case basic(username: String, password: String)
        case exec(KubeconfigDocument.ExecConfig)
    }

    /// Resolves `context` (default: the document's `current-context`), validating every field the
    /// way client-go does. Errors name the field and never quote credential values.
    public static func resolve(_ document: KubeconfigDocument, context requested: String?) throws -> KubeClusterConfig {
        let contextName = requested ?? document.currentContext ?? ""
        guard !contextName.isEmpty else {
            throw invalid("current-context", "no context given and current-context is not set")
        }
        guard let context = document.contexts?.first(where: { $0.name == contextName })?.context else {
            throw invalid("contexts", "context \(String(reflecting: contextName)) is not defined")
        }
        guard let clusterName = context.cluster, !clusterName.isEmpty else {
            throw invalid("contexts[\(contextName)].context.cluster", "is missing")
        }
        guard let cluster = document.clusters?.first(where: { $0.name == clusterName })?.cluster else {
            throw invalid("clusters", "cluster \(String(reflecting: clusterName)) of context \(String(reflecting: contextName)) is not defined")
        }
        let userName = context.user ?? ""
        let user: KubeconfigDocument.User
        if userName.isEmpty {
            user = KubeconfigDocument.User()
        } else if let found = document.users?.first(where: { $0.name == userName })?.user {
            user = found
        } else {
            throw invalid("users", "user \(String(reflecting: userName)) of context \(String(reflecting: contextName)) is not defined")
        }

        let field = "clusters[\(clusterName)].cluster"
        guard let server = cluster.server, !server.isEmpty else { throw invalid("\(field).server", "is missing") }
        guard let url = URL(string: server), let scheme = url.scheme?.lowercased(), scheme == "https" || scheme == "http", url.host != nil else {
            throw invalid("\(field).server", "must be an https:// (or http://) URL with a host")
        }
        if cluster.certificateAuthority != nil && cluster.certificateAuthorityData != nil {
            throw invalid("\(field).certificate-authority", "and certificate-authority-data are both set; use one")
        }
        let caPEM = try material(file: cluster.certificateAuthority, data: cluster.certificateAuthorityData, field: "\(field).certificate-authority")
        let insecure = cluster.insecureSkipTLSVerify ?? false
        if insecure && caPEM != nil {
            throw invalid("\(field).insecure-skip-tls-verify", "cannot be combined with a certificate authority")
        }
        if let proxy = cluster.proxyURL, !proxy.isEmpty {
            guard let proxyURL = URL(string: proxy), let proxyScheme = proxyURL.scheme?.lowercased(),
                ["http", "https", "socks5"].contains(proxyScheme), proxyURL.host != nil
            else { throw invalid("\(field).proxy-url", "must be an http://, https:// or socks5:// URL") }
        }
        let namespace = context.namespace.flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        guard isDNSLabel(namespace) else {
            throw invalid("contexts[\(contextName)].context.namespace", "must be a DNS label (lower-case letters, digits, '-')")
        }
        return KubeClusterConfig(
            contextName: contextName, clusterName: clusterName, userName: userName,
            server: server, caPEM: caPEM, insecureSkipTLSVerify: insecure, tlsServerName: cluster.tlsServerName,
            proxyURL: cluster.proxyURL, namespace: namespace,
            credentials: try credentials(user, field: "users[\(userName)].user"))
    }

    static func credentials(_ user: KubeconfigDocument.User, field: String) throws -> Credentials {
        if user.authProvider != nil {
            if user.exec != nil { throw invalid("\(field).auth-provider", "and exec are both set; use one") }
            throw invalid("\(field).auth-provider", "auth-provider plugins are not supported; use an exec credential plugin")
        }
        let hasBasic = (user.username ?? "").isEmpty == false || (user.password ?? "").isEmpty == false
        let hasToken = (user.token ?? "").isEmpty == false || (user.tokenFile ?? "").isEmpty == false
        if hasBasic && hasToken { throw invalid("\(field).token", "and username/password are both set; use one method") }
        if user.clientCertificate != nil && user.clientCertificateData != nil {
            throw invalid("\(field).client-certificate", "and client-certificate-data are both set; use one")
        }
        if user.clientKey != nil && user.clientKeyData != nil {
            throw invalid("\(field).client-key", "and client-key-data are both set; use one")
        }
        let certificate = try material(file: user.clientCertificate, data: user.clientCertificateData, field: "\(field).client-certificate")
        let key = try material(file: user.clientKey, data: user.clientKeyData, field: "\(field).client-key")
        switch (certificate, key) {
        case (nil, nil): break
        case (let certificate?, let key?):
            if hasToken || hasBasic || user.exec != nil {
                throw invalid("\(field).client-certificate", "cannot be combined with a token, basic auth or exec")
            }
            return .clientCertificate(certificatePEM: certificate, keyPEM: key)
        case (_?, nil): throw invalid("\(field).client-key", "is missing: a client certificate needs its key")
        case (nil, _?): throw invalid("\(field).client-certificate", "is missing: a client key needs its certificate")
        }
        if let exec = user.exec {
            guard let apiVersion = exec.apiVersion,
                ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"].contains(apiVersion)
            else { throw invalid("\(field).exec.apiVersion", "must be client.authentication.k8s.io/v1 or /v1beta1") }
            guard let command = exec.command, !command.isEmpty else { throw invalid("\(field).exec.command", "is missing") }
            _ = command
            switch exec.interactiveMode {
            case nil where apiVersion.hasSuffix("/v1"):
                throw invalid("\(field).exec.interactiveMode", "is required for client.authentication.k8s.io/v1 (Never, IfAvailable or Always)")
            case nil, "Never", "IfAvailable", "Always": break
            default: throw invalid("\(field).exec.interactiveMode", "must be Never, IfAvailable or Always")
            }
            return .exec(exec)
        }
        if let token = user.token, !token.isEmpty { return .token(token) }
        if let tokenFile = user.tokenFile, !tokenFile.isEmpty {
            if let reason = FileAccess.whyUnreadable(tokenFile) { throw invalid("\(field).tokenFile", "file \(tokenFile) \(reason)") }
            return .tokenFile(tokenFile)
        }
        if hasBasic { return .basic(username: user.username ?? "", password: user.password ?? "") }
        return .none
    }

    /// The bytes of a `file` / `data` pair (`data` is base64); `nil` when neither is set (blank
    /// `data` counts as not set, so a resolved config never holds empty material).
    static func material(file: String?, data: String?, field: String) throws -> [UInt8]? {
        if let data = data?.filter({ !$0.isWhitespace }), !data.isEmpty {
            guard let decoded = Data(base64Encoded: data) else {
                throw invalid("\(field)-data", "is not valid base64")
            }
            return Array(decoded)
        }
        if let file, !file.isEmpty {
            guard let contents = FileManager.default.contents(atPath: file) else {
                throw invalid(field, "file \(file) \(FileAccess.whyUnreadable(file) ?? "cannot be read")")
            }
            return Array(contents)
        }
        return nil
    }

    static func isDNSLabel(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 63 else { return false }
        func ok(_ b: UInt8) -> Bool { (b >= 97 && b <= 122) || (b >= 48 && b <= 57) }
        guard let first = bytes.first, let last = bytes.last, ok(first), ok(last) else { return false }
        return bytes.allSatisfy { ok($0) || $0 == UInt8(ascii: "-") }
    }

    static func invalid(_ field: String, _ problem: String) -> HostError {
        HostError(.kubeconfigInvalid, "kubeconfig field \(field) \(problem)")
    }

    /// A self-contained kubeconfig holding only this context, every file inlined as `-data`.
    public func renderedDocument() -> KubeconfigDocument {
        var cluster = KubeconfigDocument.Cluster()
        cluster.server = server
        cluster.certificateAuthorityData = caPEM.map { Data($0).base64EncodedString() }
        cluster.insecureSkipTLSVerify = insecureSkipTLSVerify ? true : nil
        cluster.tlsServerName = tlsServerName
        cluster.proxyURL = proxyURL
        var user = KubeconfigDocument.User()
        switch credentials {
        case .none: break
        case .token(let token): user.token = token
        case .tokenFile(let path): user.tokenFile = path
        case .clientCertificate(let certificate, let key):
            user.clientCertificateData = Data(certificate).base64EncodedString()
            user.clientKeyData = Data(key).base64EncodedString()
        case .basic(let username, let password):
            user.username = username
            user.password = password
        case .exec(let exec): user.exec = exec
        }
        let userName = self.userName.isEmpty ? "user" : self.userName
        return KubeconfigDocument(
            clusters: [.init(name: clusterName, cluster: cluster)],
            users: [.init(name: userName, user: user)],
            contexts: [.init(name: contextName, context: .init(cluster: clusterName, user: userName, namespace: namespace))],
            currentContext: contextName)
    }
}
