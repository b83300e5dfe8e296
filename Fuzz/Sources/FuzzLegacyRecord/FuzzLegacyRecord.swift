import Foundation
import GuildNetCore
import GuildNetLegacy
import GuildNetMigration

/// libFuzzer target: one legacy `guildnet.sqlite` record (collection, key, value bytes) through the
/// migration's decoders: `LegacyMapping.infer` / `namedCluster`, and for credentials
/// `CredentialCodec.parse` + `decrypt` (and `MasterKey(text:)` on the key text).
///
/// Input: byte 0 picks the collection, then the key up to the first NUL, then the value.
/// Contract: inference never maps a record to an unknown cluster; credential decoding returns a
/// value or `nil`, and decryption fails only with `HostError` `decryption_failed`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLegacyRecord(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let first = bytes.first else { return 0 }
    let collection = collections[Int(first) % collections.count]
    let rest = bytes.dropFirst()
    let split = rest.firstIndex(of: 0) ?? rest.endIndex
    let key = String(decoding: rest[..<split], as: UTF8.self)
    let value = Array(rest[split...].dropFirst())

    let target = LegacyMapping.infer(collection: collection, key: key, value: value, knownClusters: knownClusters)
    if let cluster = target.cluster { precondition(knownClusters.contains(cluster), "mapped to unknown cluster \(cluster)") }
    if let named = LegacyMapping.namedCluster(in: value) { precondition(!named.isEmpty, "an empty cluster name") }

    do {
        _ = try CredentialCodec.MasterKey(text: key)
    } catch {
        expectDecryptionFailed(error)
    }
    guard let json = try? JSONParser.parse(value), let credential = CredentialCodec.parse(json) else { return 0 }
    if case .encrypted(let nonce, let sealed) = credential {
        precondition(nonce.count == 12 && sealed.count >= 16, "envelope with a short nonce or tag")
        do {
            _ = try CredentialCodec.decrypt(nonce: nonce, sealed: sealed, key: masterKey, label: "fuzz")
        } catch {
            expectDecryptionFailed(error)
        }
    }
    return 0
}

let collections = [
    "clusters", "cluster-settings", "credentials", "published_services", "cluster-kv", "jobs", "joblogs", "audit",
    "orgs", "settings", "nodes", "unknown",
]
let knownClusters: Set<String> = ["c1", "prod", "a:b", "x/y"]
let masterKey = CredentialCodec.MasterKey(bytes: Array(repeating: 7, count: 32))

func expectDecryptionFailed(_ error: any Error) {
    guard let error = error as? HostError else { preconditionFailure("untyped error \(type(of: error))") }
    precondition(error.code == .decryptionFailed, "unexpected error code \(error.code)")
}
