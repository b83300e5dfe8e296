import Foundation
import GuildNetCore
import GuildNetLegacy

/// libFuzzer target: one legacy `guildnet.sqlite` record (collection, key, value bytes) through the
/// migration's decoders: `LegacyMapping.infer` / `namedCluster`, and for credentials the Go app's
/// record shape and reading rules (`GoCredential.Record`, `GoCredential.open`, with the key text
/// as `GUILDNET_MASTER_KEY`).
///
/// Input: byte 0 picks the collection, then the key up to the first NUL, then the value.
/// Contract: inference never maps a record to an unknown cluster; a credential record either
/// parses or not, and opening it gives plaintext, decrypted text, or a reason (never a crash).
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

    let keyFromText = GoCredential.MasterKey(string: key)
    precondition(keyFromText.bytes.count == 32, "a master key is always 32 bytes")
    guard let json = try? JSONParser.parse(value), let record = GoCredential.Record(json) else { return 0 }
    for candidate in [masterKey, keyFromText, .zero] {
        switch GoCredential.open(record, key: candidate, keyName: "fuzz") {
        case .plain(let text), .decrypted(let text): precondition(text.utf8.count <= value.count * 2 + 64, "plaintext larger than its record")
        case .unreadable(let reason): precondition(!reason.isEmpty, "an unreadable record without a reason")
        }
    }
    return 0
}

let collections = [
    "clusters", "cluster-settings", "credentials", "published_services", "cluster-kv", "jobs", "joblogs", "audit",
    "orgs", "settings", "nodes", "unknown",
]
let knownClusters: Set<String> = ["c1", "prod", "a:b", "x/y"]
let masterKey = GoCredential.MasterKey(string: "fuzz-master-key")
