import Foundation
import GuildNetCore
import NIOSSL

/// How one client authenticates each request: a fixed bearer token or basic auth, a token file
/// (re-read every minute and after a 401), or an exec plugin (token or client certificate, cached
/// by the plugin's provider, invalidated after a 401). Client certificates from the kubeconfig are
/// part of the client's TLS configuration instead. Never logs or describes a secret.
final class KubeAuthenticator: Sendable {
    /// What to add to one request.
    struct Applied: Sendable {
        /// The `Authorization` header value (secret: never log).
        var authorization: String?
        /// A per-request TLS configuration (exec plugin client certificates).
        var tls: TLSConfiguration?
    }

    private enum Mode: Sendable {
        case none
        case header(String)
        case tokenFile(path: String)
        case exec(ExecCredentialProvider)
    }

    private struct FileToken: Sendable {
        var token: String
        var readAt: ContinuousClock.Instant
    }

    private struct ExecTLS: Sendable {
        var credential: ExecCredential
        var tls: TLSConfiguration
    }

    private let mode: Mode
    private let baseTLS: TLSConfiguration?
    private let fileToken = LockedValue<FileToken?>(nil)
    private let execTLS = LockedValue<ExecTLS?>(nil)
    /// The exec provider, when the credentials come from a plugin (tests read its run count).
    let execProvider: ExecCredentialProvider?

    static let tokenFileRefresh: Duration = .seconds(60)

    init(config: KubeClusterConfig, baseTLS: TLSConfiguration?) {
        self.baseTLS = baseTLS
        switch config.credentials {
        case .none, .clientCertificate:
            mode = .none
            execProvider = nil
        case .token(let token):
            mode = .header("Bearer " + token)
            execProvider = nil
        case .basic(let username, let password):
            mode = .header("Basic " + Data("\(username):\(password)".utf8).base64EncodedString())
            execProvider = nil
        case .tokenFile(let path):
            mode = .tokenFile(path: path)
            execProvider = nil
        case .exec(let exec):
            let provider = ExecCredentialProvider(config: exec, server: config.server, caPEM: config.caPEM)
            mode = .exec(provider)
            execProvider = provider
        }
    }

    /// `true` when a 401 may be cured by fetching the credential again.
    var refreshable: Bool {
        switch mode {
        case .tokenFile, .exec: true
        case .none, .header: false
        }
    }

    func current() async throws -> Applied {
        switch mode {
        case .none:
            return Applied()
        case .header(let value):
            return Applied(authorization: value)
        case .tokenFile(let path):
            let now = ContinuousClock.now
            if let cached = fileToken.withLock({ $0 }), now - cached.readAt < Self.tokenFileRefresh {
                return Applied(authorization: "Bearer " + cached.token)
            }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw HostError(.kubeconfigInvalid, "kubeconfig tokenFile \(path) \(FileAccess.whyUnreadable(path) ?? "cannot be read")")
            }
            let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            fileToken.withLock { $0 = FileToken(token: token, readAt: now) }
            return Applied(authorization: "Bearer " + token)
        case .exec(let provider):
            let credential = try await provider.credential()
            switch credential.secret {
            case .token(let token):
                return Applied(authorization: "Bearer " + token)
            case .clientCertificate:
                return Applied(tls: try tls(for: credential))
            }
        }
    }

    /// Forgets the cached credential after the server answered 401.
    func invalidate() async {
        switch mode {
        case .tokenFile: fileToken.withLock { $0 = nil }
        case .exec(let provider):
            execTLS.withLock { $0 = nil }
            await provider.invalidate()
        case .none, .header: break
        }
    }

    /// The TLS configuration presenting an exec plugin's client certificate (built once per credential,
    /// so the connection pool keeps reusing its connections).
    private func tls(for credential: ExecCredential) throws -> TLSConfiguration {
        if let cached = execTLS.withLock({ $0 }), cached.credential == credential { return cached.tls }
        guard case .clientCertificate(let certificatePEM, let keyPEM) = credential.secret else {
            throw HostError(.internalError, "exec credential is not a client certificate")
        }
        var tls = baseTLS ?? TLSConfiguration.makeClientConfiguration()
        do {
            tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(certificatePEM).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: keyPEM, format: .pem))
        } catch {
            throw HostError(.credentialPluginFailed, "the exec credential plugin returned a client certificate or key that is not valid PEM")
        }
        execTLS.withLock { $0 = ExecTLS(credential: credential, tls: tls) }
        return tls
    }
}
