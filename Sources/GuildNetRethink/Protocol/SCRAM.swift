import Crypto
import Foundation
import _CryptoExtras

/// SCRAM-SHA-256 (RFC 5802 / RFC 7677) without channel binding, as RethinkDB uses it.
/// Shared by the client (proof, server-signature check) and RethinkSim (proof check, signature).
public enum SCRAM {
    /// `biws` is base64 of the GS2 header `n,,`.
    public static let channelBinding = "biws"
    /// RethinkDB's default iteration count.
    public static let defaultIterations = 4096

    /// Escapes a user name: `=` → `=3D`, `,` → `=2C`.
    public static func escape(user: String) -> String {
        user.replacingOccurrences(of: "=", with: "=3D").replacingOccurrences(of: ",", with: "=2C")
    }

    /// Undoes ``escape(user:)``.
    public static func unescape(user: String) -> String {
        user.replacingOccurrences(of: "=2C", with: ",").replacingOccurrences(of: "=3D", with: "=")
    }

    /// A fresh base64 nonce of 18 random bytes (as the Python driver makes them).
    public static func makeNonce() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<18).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString()
    }

    /// The keys derived from a password, salt and iteration count.
    public struct Keys: Sendable {
        public let saltedPassword: SymmetricKey
        public let clientKey: [UInt8]
        public let storedKey: [UInt8]
        public let serverKey: [UInt8]

        /// Derives the keys (PBKDF2-HMAC-SHA256; RethinkDB's 4096 rounds need the unchecked variant).
        public init(password: String, salt: [UInt8], iterations: Int) throws {
            let salted = try KDF.Insecure.PBKDF2.deriveKey(
                from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32,
                unsafeUncheckedRounds: iterations)
            saltedPassword = salted
            clientKey = Array(HMAC<SHA256>.authenticationCode(for: Array("Client Key".utf8), using: salted))
            storedKey = Array(SHA256.hash(data: clientKey))
            serverKey = Array(HMAC<SHA256>.authenticationCode(for: Array("Server Key".utf8), using: salted))
        }

        /// `ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage)`.
        public func clientProof(authMessage: String) -> [UInt8] {
            let signature = SCRAM.hmac(key: storedKey, message: authMessage)
            return zip(clientKey, signature).map { $0 ^ $1 }
        }

        /// `ServerSignature = HMAC(ServerKey, AuthMessage)`.
        public func serverSignature(authMessage: String) -> [UInt8] {
            SCRAM.hmac(key: serverKey, message: authMessage)
        }
    }

    /// Checks a client proof against the stored key, as a server does: recovers ClientKey and compares its hash.
    public static func verify(proof: [UInt8], storedKey: [UInt8], authMessage: String) -> Bool {
        let signature = hmac(key: storedKey, message: authMessage)
        guard proof.count == signature.count else { return false }
        let clientKey = zip(proof, signature).map { $0 ^ $1 }
        return constantTimeEquals(Array(SHA256.hash(data: clientKey)), storedKey)
    }

    /// `AuthMessage = client-first-bare + "," + server-first + "," + client-final-without-proof`.
    public static func authMessage(clientFirstBare: String, serverFirst: String, clientFinalWithoutProof: String) -> String {
        clientFirstBare + "," + serverFirst + "," + clientFinalWithoutProof
    }

    /// Parses `a=b,c=d` SCRAM attributes (values may contain `=`).
    public static func attributes(_ message: String) -> [Character: String] {
        var result: [Character: String] = [:]
        for part in message.split(separator: ",", omittingEmptySubsequences: true) {
            guard let first = part.first, part.dropFirst().first == "=" else { continue }
            result[first] = String(part.dropFirst(2))
        }
        return result
    }

    static func hmac(key: [UInt8], message: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: SymmetricKey(data: key)))
    }

    /// Compares without an early exit.
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
