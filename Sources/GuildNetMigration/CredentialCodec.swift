import Crypto
import Foundation
import GuildNetCore

/// Credential values of the legacy `credentials` collection.
///
/// A value is either a plain JSON string (the credential itself, e.g. a kubeconfig's YAML) or the
/// encrypted envelope the Go app writes:
///
/// ```json
/// {"enc":"aes-256-gcm","nonce":"<base64, 12 bytes>","ciphertext":"<base64: ciphertext || 16-byte tag>"}
/// ```
///
/// AES-256-GCM, no associated data, plaintext = the UTF-8 credential. The key is
/// `GUILDNET_MASTER_KEY`: 32 bytes as base64 (44 characters) or hex (64 characters).
public enum CredentialCodec {
    public static let algorithm = "aes-256-gcm"

    /// The master key, parsed from the environment variable's text.
    public struct MasterKey: Sendable {
        let key: SymmetricKey

        /// - Throws: ``HostError`` `decryption_failed` when the text is not 32 bytes of base64 or hex
        ///   (the message never quotes the text).
        public init(text: String) throws {
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.count == 64, let bytes = Self.hexBytes(trimmed) {
                key = SymmetricKey(data: bytes)
            } else if let data = Data(base64Encoded: trimmed), data.count == 32 {
                key = SymmetricKey(data: data)
            } else {
                throw HostError(.decryptionFailed, "the master key must be 32 bytes, base64 (44 characters) or hex (64 characters)")
            }
        }

        public init(bytes: [UInt8]) { key = SymmetricKey(data: bytes) }

        static func hexBytes(_ text: String) -> [UInt8]? {
            var bytes: [UInt8] = []
            var high: UInt8?
            for scalar in text.unicodeScalars {
                guard let nibble = UInt8(String(scalar), radix: 16) else { return nil }
                if let h = high {
                    bytes.append(h << 4 | nibble)
                    high = nil
                } else {
                    high = nibble
                }
            }
            return high == nil ? bytes : nil
        }
    }

    /// A parsed credential value.
    public enum Value: Sendable, Equatable {
        case plain(String)
        case encrypted(nonce: [UInt8], sealed: [UInt8])

        public var isEncrypted: Bool {
            if case .encrypted = self { return true }
            return false
        }
    }

    /// Parses a legacy credential value; `nil` when it is neither a JSON string nor an envelope.
    public static func parse(_ json: JSONValue) -> Value? {
        switch json {
        case .string(let text):
            return .plain(text)
        case .object(let fields):
            guard fields["enc"]?.stringValue == algorithm,
                let nonceText = fields["nonce"]?.stringValue, let nonce = Data(base64Encoded: nonceText), nonce.count == 12,
                let sealedText = fields["ciphertext"]?.stringValue, let sealed = Data(base64Encoded: sealedText), sealed.count >= 16
            else { return nil }
            return .encrypted(nonce: [UInt8](nonce), sealed: [UInt8](sealed))
        default:
            return nil
        }
    }

    /// Decrypts an envelope to its UTF-8 plaintext.
    /// - Throws: ``HostError`` `decryption_failed` (wrong key or tampered value), never quoting the value.
    public static func decrypt(nonce: [UInt8], sealed: [UInt8], key: MasterKey, label: String) throws -> String {
        do {
            let box = try AES.GCM.SealedBox(combined: nonce + sealed)
            let plaintext = try AES.GCM.open(box, using: key.key)
            guard let text = String(bytes: plaintext, encoding: .utf8) else {
                throw HostError(.decryptionFailed, "credential \(label) decrypts to bytes that are not UTF-8")
            }
            return text
        } catch let error as HostError {
            throw error
        } catch {
            throw HostError(.decryptionFailed, "credential \(label) does not decrypt under the master key (wrong key or tampered value)")
        }
    }

    /// The envelope for `plaintext` (used by fixtures and tests; the Go app writes the same form).
    public static func encrypt(_ plaintext: String, key: MasterKey) throws -> JSONValue {
        do {
            let box = try AES.GCM.seal(Array(plaintext.utf8), using: key.key)
            return .object([
                "enc": .string(algorithm),
                "nonce": .string(Data(box.nonce).base64EncodedString()),
                "ciphertext": .string((box.ciphertext + box.tag).base64EncodedString()),
            ])
        } catch {
            throw HostError(.internalError, "cannot encrypt a credential: \(error)")
        }
    }
}
