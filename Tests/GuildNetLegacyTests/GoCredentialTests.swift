import Foundation
import GuildNetCore
import GuildNetLegacy
import Testing

/// The Go app's credential records and `secrets.Manager` encryption.
@Suite("Go credential records")
struct GoCredentialTests {
    /// Vectors from Python `cryptography`'s AESGCM (nonce 00..0b, plaintext "hello from go"), key
    /// derived as the Go app does.
    static let vectors: [(key: String, value: String)] = [
        ("short-key", "AAECAwQFBgcICQoLY7h6HpT28UeMHHnUj7NKYqkTF0AItSBBl0/ekuQ="),
        (String(repeating: "x", count: 40), "AAECAwQFBgcICQoLqFIaCylG0GV3jlF5xUdV9FfLxAwx9LL7hJEV1Z4="),
        ("", "AAECAwQFBgcICQoL4K5fPm/d6YutFXKCklJwiWR+H+tdFgo3k8Bfz9A="),
    ]

    @Test("the key is the string's bytes in a zero-filled 32-byte buffer: padded, truncated, or all zero")
    func keyDerivation() {
        let short = GoCredential.MasterKey(string: "abc")
        #expect(short.bytes == [0x61, 0x62, 0x63] + [UInt8](repeating: 0, count: 29))
        #expect(!short.truncated)
        let long = GoCredential.MasterKey(string: String(repeating: "k", count: 40))
        #expect(long.bytes == [UInt8](repeating: 0x6B, count: 32))
        #expect(long.truncated)
        #expect(GoCredential.MasterKey.zero.bytes == [UInt8](repeating: 0, count: 32))
        #expect(GoCredential.MasterKey.zero.isZero)
        // The first 32 bytes decide: a longer key with the same prefix is the same key.
        #expect(
            GoCredential.MasterKey(string: String(repeating: "x", count: 32)).bytes == GoCredential.MasterKey(string: String(repeating: "x", count: 40)).bytes)
    }

    @Test("decrypts values encrypted by an independent implementation (Python cryptography AESGCM)")
    func independentVectors() {
        for vector in Self.vectors {
            #expect(GoCredential.decrypt(vector.value, key: GoCredential.MasterKey(string: vector.key)) == "hello from go", "key \(vector.key.count) bytes")
        }
        #expect(GoCredential.decrypt(Self.vectors[0].value, key: GoCredential.MasterKey(string: "short-key?")) == nil)
        #expect(GoCredential.decrypt(Self.vectors[0].value, key: .zero) == nil)
        #expect(GoCredential.decrypt("not base64 at all: yaml", key: .zero) == nil)
    }

    @Test("encrypt then decrypt round-trips; another key fails")
    func roundTrip() throws {
        let key = GoCredential.MasterKey(string: "round-trip")
        let value = try GoCredential.encrypt("secret-text", key: key)
        #expect(Data(base64Encoded: value)?.count == 12 + 11 + 16)
        #expect(GoCredential.decrypt(value, key: key) == "secret-text")
        #expect(GoCredential.decrypt(value, key: GoCredential.MasterKey(string: "other")) == nil)
    }

    @Test("records: the full form, without the flag, the bootstrap form, a bare string; anything else is refused")
    func records() throws {
        let full = try #require(
            GoCredential.Record(
                try JSONParser.parse(
                    #"{"id":"cred-1","scopeType":"cluster","scopeId":"c1","kind":"cluster.kubeconfig","value":"v","encrypted":true,"rotatedAt":"2026-01-01T00:00:00Z"}"#
                )))
        #expect(full.value == "v")
        #expect(full.encrypted == true)
        #expect(full.withPlaintext("p")["encrypted"] == false)
        #expect(full.withPlaintext("p")["scopeId"] == "c1")
        let unflagged = try #require(GoCredential.Record(try JSONParser.parse(#"{"id":"x","value":"v"}"#)))
        #expect(unflagged.encrypted == nil)
        let bootstrap = try #require(GoCredential.Record(try JSONParser.parse(#"{"value":"v"}"#)))
        #expect(bootstrap.withPlaintext("p") == ["value": "p"])
        #expect(GoCredential.Record(.string("v"))?.value == "v")
        #expect(GoCredential.Record(try JSONParser.parse(#"{"enc":"aes-256-gcm"}"#)) == nil)
        #expect(GoCredential.Record(try JSONParser.parse(#"{"value":1}"#)) == nil)
        #expect(GoCredential.Record(try JSONParser.parse(#"{"value":"v","encrypted":"yes"}"#)) == nil)
    }

    @Test("reading follows the Go app: flagged must decrypt; unflagged tries decryption, then plaintext; both validated")
    func readingRules() throws {
        let key = GoCredential.MasterKey(string: "k")
        let isConfig: (String) -> Bool = { $0.hasPrefix("apiVersion:") }
        let encrypted = try GoCredential.encrypt("apiVersion: v1", key: key)
        func record(_ value: String, _ flag: Bool?) throws -> GoCredential.Record {
            var fields: [String: JSONValue] = ["value": .string(value)]
            if let flag { fields["encrypted"] = .bool(flag) }
            return try #require(GoCredential.Record(.object(fields)))
        }
        #expect(GoCredential.open(try record(encrypted, true), key: key, keyName: "k", accept: isConfig) == .decrypted("apiVersion: v1"))
        #expect(GoCredential.open(try record(encrypted, nil), key: key, keyName: "k", accept: isConfig) == .decrypted("apiVersion: v1"))
        #expect(GoCredential.open(try record(encrypted, false), key: key, keyName: "k", accept: isConfig) == .decrypted("apiVersion: v1"))
        #expect(GoCredential.open(try record("apiVersion: v1", nil), key: key, keyName: "k", accept: isConfig) == .plain("apiVersion: v1"))
        #expect(GoCredential.open(try record("apiVersion: v1", false), key: key, keyName: "k", accept: isConfig) == .plain("apiVersion: v1"))
        // Flagged plaintext is refused (decryption is required), as by the Go app.
        guard case .unreadable = GoCredential.open(try record("apiVersion: v1", true), key: key, keyName: "k", accept: isConfig) else {
            Issue.record("a flagged plaintext value was accepted")
            return
        }
        let other = GoCredential.MasterKey(string: "other")
        guard case .unreadable(let flagged) = GoCredential.open(try record(encrypted, true), key: other, keyName: "KEY", accept: isConfig),
            case .unreadable(let unflagged) = GoCredential.open(try record(encrypted, nil), key: other, keyName: "KEY", accept: isConfig)
        else {
            Issue.record("a value under another key was read")
            return
        }
        #expect(flagged.contains("does not decrypt under KEY"))
        #expect(unflagged.contains("looks encrypted"))
        #expect(!flagged.contains(encrypted) && !unflagged.contains(encrypted))
    }
}
