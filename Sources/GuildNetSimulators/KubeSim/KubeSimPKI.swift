import Crypto
import Foundation
import GuildNetCore
import SwiftASN1
import X509

/// The test PKI of one KubeSim: a self-signed CA, a server certificate (SAN `localhost`,
/// `127.0.0.1`) and a client certificate (`CN=kubesim-admin`, `O=system:masters`), all P-256,
/// generated fresh per simulator with swift-certificates. Everything is held as PEM text.
public struct KubeSimPKI: Sendable {
    public let caCertificatePEM: String
    public let serverCertificatePEM: String
    public let serverKeyPEM: String
    public let clientCertificatePEM: String
    public let clientKeyPEM: String

    /// A certificate signed by a different, untrusted CA (for tests of a refused client certificate).
    public let foreignClientCertificatePEM: String
    public let foreignClientKeyPEM: String

    public static func generate(commonName: String = "kubesim-ca") throws -> KubeSimPKI {
        do {
            let now = Date()
            let notBefore = now.addingTimeInterval(-3600)
            let notAfter = now.addingTimeInterval(3600 * 24 * 365)

            let caKey = P256.Signing.PrivateKey()
            let caName = try DistinguishedName { CommonName(commonName) }
            let ca = try Certificate(
                version: .v3,
                serialNumber: .init(),
                publicKey: .init(caKey.publicKey),
                notValidBefore: notBefore,
                notValidAfter: notAfter,
                issuer: caName,
                subject: caName,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                    Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
                },
                issuerPrivateKey: .init(caKey)
            )

            let serverKey = P256.Signing.PrivateKey()
            let server = try Certificate(
                version: .v3,
                serialNumber: .init(),
                publicKey: .init(serverKey.publicKey),
                notValidBefore: notBefore,
                notValidAfter: notAfter,
                issuer: caName,
                subject: try DistinguishedName { CommonName("kubesim-apiserver") },
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                    try ExtendedKeyUsage([.serverAuth])
                    SubjectAlternativeNames([
                        .dnsName("localhost"),
                        .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                    ])
                },
                issuerPrivateKey: .init(caKey)
            )

            let (clientCert, clientKey) = try makeClient(caName: caName, caKey: caKey, notBefore: notBefore, notAfter: notAfter)

            let foreignKey = P256.Signing.PrivateKey()
            let foreignName = try DistinguishedName { CommonName("kubesim-foreign-ca") }
            let (foreignCert, foreignClientKey) = try makeClient(
                caName: foreignName, caKey: foreignKey, notBefore: notBefore, notAfter: notAfter)

            return KubeSimPKI(
                caCertificatePEM: try ca.serializeAsPEM().pemString,
                serverCertificatePEM: try server.serializeAsPEM().pemString,
                serverKeyPEM: serverKey.pemRepresentation,
                clientCertificatePEM: try clientCert.serializeAsPEM().pemString,
                clientKeyPEM: clientKey.pemRepresentation,
                foreignClientCertificatePEM: try foreignCert.serializeAsPEM().pemString,
                foreignClientKeyPEM: foreignClientKey.pemRepresentation
            )
        } catch {
            throw HostError(.internalError, "KubeSim PKI generation failed: \(error)")
        }
    }

    private static func makeClient(
        caName: DistinguishedName, caKey: P256.Signing.PrivateKey, notBefore: Date, notAfter: Date
    ) throws -> (Certificate, P256.Signing.PrivateKey) {
        let key = P256.Signing.PrivateKey()
        let cert = try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: .init(key.publicKey),
            notValidBefore: notBefore,
            notValidAfter: notAfter,
            issuer: caName,
            subject: try DistinguishedName {
                OrganizationName("system:masters")
                CommonName("kubesim-admin")
            },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                try ExtendedKeyUsage([.clientAuth])
            },
            issuerPrivateKey: .init(caKey)
        )
        return (cert, key)
    }
}
