import Crypto
import Foundation
import GuildNetCore
import GuildNetStateDirectory
import NIOSSL
import SwiftASN1
import X509

/// The host proxy's secrets in the state directory: the bearer token (`proxy-token`, 0600, made at
/// first start, replaced by ``rotate()``) and its TLS identity (`proxy-tls/ca.pem`, `cert.pem`,
/// `key.pem`, 0600): kubectl sends a bearer token only over TLS, so the proxy serves HTTPS with a
/// certificate for 127.0.0.1/localhost signed by its own CA, which written kubeconfigs trust.
public final class HostProxyCredentials: Sendable {
    public let tokenPath: String
    let caPEM: String
    let certificatePEM: String
    let keyPEM: String
    private let token: LockedValue<String>

    /// Loads the token and TLS identity from `stateDirectory`, creating what is missing.
    public init(stateDirectory: String) throws {
        tokenPath = stateDirectory + "/proxy-token"
        let tlsDirectory = stateDirectory + "/proxy-tls"
        let stored = (try? AtomicFile.read(tokenPath)).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) }
        if let text = stored?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty {
            token = LockedValue(text)
        } else {
            let fresh = Self.newToken()
            try Self.write(fresh, to: tokenPath)
            token = LockedValue(fresh)
        }
        let paths = (ca: tlsDirectory + "/ca.pem", cert: tlsDirectory + "/cert.pem", key: tlsDirectory + "/key.pem")
        let read = { (path: String) -> [UInt8]? in (try? AtomicFile.read(path)).flatMap { $0 } }
        if let ca = read(paths.ca), let cert = read(paths.cert), let key = read(paths.key) {
            caPEM = String(decoding: ca, as: UTF8.self)
            certificatePEM = String(decoding: cert, as: UTF8.self)
            keyPEM = String(decoding: key, as: UTF8.self)
        } else {
            let made = try Self.makeIdentity()
            try Self.write(made.ca, to: paths.ca)
            try Self.write(made.cert, to: paths.cert)
            try Self.write(made.key, to: paths.key)
            (caPEM, certificatePEM, keyPEM) = made
        }
    }

    /// The current token (secret).
    var current: String { token.withLock { $0 } }

    /// `true` when `presented` is the current token (constant time).
    func accepts(_ presented: String) -> Bool {
        let expected = Array(current.utf8)
        let given = Array(presented.utf8)
        guard expected.count == given.count else { return false }
        var difference: UInt8 = 0
        for index in expected.indices { difference |= expected[index] ^ given[index] }
        return difference == 0
    }

    /// Replaces the token (the file first, then the one requests are checked against).
    public func rotate() throws {
        let fresh = Self.newToken()
        try Self.write(fresh, to: tokenPath)
        token.withLock { $0 = fresh }
    }

    /// The TLS server context (HTTP/1.1 only: requests are relayed as HTTP/1.1 byte streams).
    func serverContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)))
        configuration.applicationProtocols = ["http/1.1"]
        return try NIOSSLContext(configuration: configuration)
    }

    private static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    private static func write(_ text: String, to path: String) throws {
        do {
            try AtomicFile.write(Array(text.utf8), to: path, mode: 0o600)
        } catch {
            throw HostError(.io, "cannot write \(path): \(error)")
        }
    }

    private static func makeIdentity() throws -> (ca: String, cert: String, key: String) {
        do {
            let notBefore = Date().addingTimeInterval(-3600)
            let notAfter = Date().addingTimeInterval(10 * 365 * 24 * 3600)
            let caKey = P256.Signing.PrivateKey()
            let caName = try DistinguishedName { CommonName("guildnet-host proxy CA") }
            let ca = try Certificate(
                version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey), notValidBefore: notBefore, notValidAfter: notAfter,
                issuer: caName, subject: caName, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
                },
                issuerPrivateKey: .init(caKey))
            let key = P256.Signing.PrivateKey()
            let certificate = try Certificate(
                version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: notBefore, notValidAfter: notAfter,
                issuer: caName, subject: try DistinguishedName { CommonName("guildnet-host proxy") }, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                    try ExtendedKeyUsage([.serverAuth])
                    SubjectAlternativeNames([.dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))])
                },
                issuerPrivateKey: .init(caKey))
            return (try ca.serializeAsPEM().pemString, try certificate.serializeAsPEM().pemString, key.pemRepresentation)
        } catch {
            throw HostError(.internalError, "cannot make the host proxy's TLS identity: \(error)")
        }
    }
}
