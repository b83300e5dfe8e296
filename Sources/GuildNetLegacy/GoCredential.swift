import Crypto
import Foundation
import GuildNetCore

/// A `credentials` record as the Go GuildNet app writes it, and its encryption (`secrets.Manager`).
///
/// The record is a JSON object: `{"id", "scopeType", "scopeId", "kind", "value", "encrypted",
/// "rotatedAt"}`; some Go paths omit `encrypted`, and its bootstrap path stores only `{"value"}`.
/// A bare JSON string (what earlier versions of this host wrote) is read as an unflagged value.
///
/// Encryption: AES-256-GCM, no associated data; the key is the master key string's bytes copied
/// into a zero-filled 32-byte buffer (shorter keys padded with zeros, longer ones truncated, an
/// empty or unset key = 32 zero bytes); `value` = standard base64 of `nonce(12) || ciphertext || tag(16)`.
///
/// Reading, as the Go app reads a kubeconfig: `encrypted: true` requires decryption; otherwise
/// decryption is tried first and the value is taken as plaintext when it fails. Either way the
/// result must pass the caller's validation (a kubeconfig must parse as one).
public enum GoCredential {
    /// The Go app's key: the `GUILDNET_MASTER_KEY` string's bytes in a zero-filled 32-byte buffer.
    public struct MasterKey: Sendable, Equatable {
        public let bytes: [UInt8]
        /// The key string was longer than 32 bytes: the Go app (and this host) used its first 32 bytes.
        public let truncated: Bool

        /// Derives the key from the master key string exactly as `secrets.New` does.
        public init(string: String) {
            let utf8 = Array(string.utf8)
            bytes = Array(utf8.prefix(32)) + [UInt8](repeating: 0, count: max(0, 32 - utf8.count))
            truncated = utf8.count > 32
        }

        /// The all-zero key the Go app encrypted with when `GUILDNET_MASTER_KEY` was empty or unset.
        public static let zero = MasterKey(string: "")

        public var isZero: Bool { bytes.allSatisfy { $0 == 0 } }

        var symmetricKey: SymmetricKey { SymmetricKey(data: bytes) }

        /// Reads a key file: its contents minus trailing line breaks. `nil` when it cannot be read.
        public static func contents(ofFile path: String) -> String? {
            guard let data = FileManager.default.contents(atPath: path) else { return nil }
            var text = String(decoding: data, as: UTF8.self)
            while let last = text.last, last == "\n" || last == "\r\n" || last == "\r" { text.removeLast() }
            return text
        }
    }

    /// One parsed record.
    public struct Record: Sendable, Equatable {
        /// Every field of the record as stored (the bare-string form gives `["value": <string>]`).
        public var fields: [String: JSONValue]
        public var value: String
        /// The `encrypted` flag; `nil` when absent.
        public var encrypted: Bool?

        /// Parses a stored record; `nil` when it is neither an object with a string `value` nor a JSON string.
        public init?(_ json: JSONValue) {
            switch json {
            case .string(let text):
                fields = ["value": .string(text)]
                value = text
                encrypted = nil
            case .object(let object):
                guard let text = object["value"]?.stringValue else { return nil }
                if let flag = object["encrypted"], flag != .null {
                    guard let bool = flag.boolValue else { return nil }
                    encrypted = bool
                } else {
                    encrypted = nil
                }
                fields = object
                value = text
            default:
                return nil
            }
        }

        /// The record with `plaintext` as its value and `encrypted: false` (every other field kept).
        public func withPlaintext(_ plaintext: String) -> JSONValue {
            var copy = fields
            copy["value"] = .string(plaintext)
            if encrypted != nil || copy.count > 1 { copy["encrypted"] = .bool(false) }
            return .object(copy)
        }
    }

    /// What a record holds once read.
    public enum Opened: Sendable, Equatable {
        /// Stored in the clear.
        case plain(String)
        /// Decrypted under the key given.
        case decrypted(String)
        /// Cannot be read: the reason (never quoting the value).
        case unreadable(String)

        public var text: String? {
            switch self {
            case .plain(let text), .decrypted(let text): text
            case .unreadable: nil
            }
        }
    }

    /// Reads `record` under `key` with the Go app's rules; `accept` validates the result (e.g. that
    /// a kubeconfig parses). `keyName` names the key in reasons ("GUILDNET_MASTER_KEY", "the all-zero key").
    public static func open(_ record: Record, key: MasterKey, keyName: String, accept: (String) -> Bool = { _ in true }) -> Opened {
        let decrypted = decrypt(record.value, key: key)
        if record.encrypted == true {
            guard let decrypted else {
                return .unreadable("is marked encrypted but does not decrypt under \(keyName) (another key, or a tampered value)")
            }
            return accept(decrypted) ? .decrypted(decrypted) : .unreadable("decrypts under \(keyName) to something that is not valid")
        }
        if let decrypted, accept(decrypted) { return .decrypted(decrypted) }
        if accept(record.value) { return .plain(record.value) }
        if looksEncrypted(record.value) {
            return .unreadable("looks encrypted (base64 of nonce, ciphertext and tag) but does not decrypt under \(keyName)")
        }
        return .unreadable("is neither a valid plaintext value nor decryptable under \(keyName)")
    }

    /// Decrypts a stored value: base64 → nonce || ciphertext || tag → AES-256-GCM open → UTF-8.
    /// `nil` when any step fails.
    public static func decrypt(_ value: String, key: MasterKey) -> String? {
        var compact = value
        compact.removeAll { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }  // Go's base64 decoder skips line breaks
        guard let data = Data(base64Encoded: compact), data.count >= 12 + 16 else { return nil }
        guard let box = try? AES.GCM.SealedBox(combined: data),
            let plaintext = try? AES.GCM.open(box, using: key.symmetricKey)
        else { return nil }
        return String(bytes: plaintext, encoding: .utf8)
    }

    /// Encrypts as the Go app does (random 12-byte nonce); the stored `value`.
    public static func encrypt(_ plaintext: String, key: MasterKey) throws -> String {
        do {
            let box = try AES.GCM.seal(Array(plaintext.utf8), using: key.symmetricKey)
            guard let combined = box.combined else { throw HostError(.internalError, "AES-GCM produced no combined box") }
            return combined.base64EncodedString()
        } catch let error as HostError {
            throw error
        } catch {
            throw HostError(.internalError, "cannot encrypt a credential: \(error)")
        }
    }

    /// Whether a value has the shape of an encrypted one: standard base64 of at least nonce + tag.
    static func looksEncrypted(_ value: String) -> Bool {
        guard let data = Data(base64Encoded: value) else { return false }
        return data.count >= 12 + 16
    }

    /// The full record the Go app writes for a cluster's kubeconfig.
    public static func kubeconfigRecord(cluster: String, value: String, encrypted: Bool, rotatedAt: Date = Date()) -> JSONValue {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return .object([
            "id": .string("cred-\(cluster)-kubeconfig"),
            "scopeType": .string("cluster"),
            "scopeId": .string(cluster),
            "kind": .string("cluster.kubeconfig"),
            "value": .string(value),
            "encrypted": .bool(encrypted),
            "rotatedAt": .string(formatter.string(from: rotatedAt)),
        ])
    }
}
