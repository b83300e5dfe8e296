import Foundation
import GRDB
import GuildNetCore
import GuildNetLegacy
import GuildNetSettings

/// How a record's cluster is decided: the operator's CSV first, then ``LegacyMapping/infer``.
public struct RecordResolver: Sendable {
    public let knownClusters: Set<String>
    public let mapping: MappingCSV

    public init(knownClusters: Set<String>, mapping: MappingCSV) {
        self.knownClusters = knownClusters
        self.mapping = mapping
    }

    /// The target of one record. A CSV row wins: when inference already puts the record into the
    /// CSV's cluster its target is kept, otherwise the record becomes key `<collection>/<key>` of
    /// the CSV's cluster.
    public func resolve(collection: String, key: String, value: [UInt8]) -> LegacyMapping.Target {
        let inferred = LegacyMapping.infer(collection: collection, key: key, value: value, knownClusters: knownClusters)
        guard let cluster = mapping.cluster(collection: collection, key: key) else { return inferred }
        if inferred.cluster == cluster { return inferred }
        return .clusterKey(cluster: cluster, key: "\(collection)/\(key)")
    }
}

/// What a credential becomes.
public enum CredentialHandling: String, Sendable, Codable {
    /// Stored in the clear in the legacy DB; moved as is.
    case plain
    /// Encrypted in the legacy DB; decrypted with the master key.
    case decrypted
    /// Encrypted in the legacy DB and no master key given: moved still encrypted.
    case movedEncrypted = "moved_encrypted"
}

/// One record turned into what the migration writes.
enum PreparedRecord {
    case hostGlobal
    case unmapped(String)
    case kv(cluster: String, key: String, text: String, credential: CredentialHandling?)
    case settings(cluster: String, values: [String: JSONValue])
    case kubeconfig(cluster: String, bytes: [UInt8], credential: CredentialHandling)

    /// Validates and converts a record. `decode` false skips JSON validation of plain store values
    /// (already validated by the plan, in the same read transaction).
    static func prepare(
        collection: String, key: String, value: [UInt8]?, resolver: RecordResolver,
        masterKey: CredentialCodec.MasterKey?, validate: Bool
    ) throws -> PreparedRecord {
        guard let value else {
            return LegacyLayout.hostGlobalCollections.contains(collection) ? .hostGlobal : .unmapped("value is NULL or not text")
        }
        let target = resolver.resolve(collection: collection, key: key, value: value)
        let label = "\(collection)/\(key)"
        switch target {
        case .hostGlobal:
            return .hostGlobal
        case .unmapped(let reason):
            return .unmapped(reason)
        case .clusterKey(let cluster, let targetKey):
            guard let text = String(bytes: value, encoding: .utf8) else { return .unmapped("value is not valid UTF-8") }
            if collection == "credentials" {
                guard let json = try? JSONParser.parse(value), let credential = CredentialCodec.parse(json) else {
                    return .unmapped("credential value is neither a JSON string nor an aes-256-gcm envelope")
                }
                switch credential {
                case .plain:
                    return .kv(cluster: cluster, key: targetKey, text: text, credential: .plain)
                case .encrypted(let nonce, let sealed):
                    guard let masterKey else { return .kv(cluster: cluster, key: targetKey, text: text, credential: .movedEncrypted) }
                    let plaintext = try CredentialCodec.decrypt(nonce: nonce, sealed: sealed, key: masterKey, label: label)
                    return .kv(cluster: cluster, key: targetKey, text: JSONValue.string(plaintext).jsonString, credential: .decrypted)
                }
            }
            if validate {
                guard (try? JSONParser.parse(value)) != nil else { return .unmapped("value is not valid JSON") }
            }
            return .kv(cluster: cluster, key: targetKey, text: text, credential: nil)
        case .clusterSettings(let cluster):
            guard case .object(let fields)? = try? JSONParser.parse(value) else {
                return .unmapped("cluster settings value is not a JSON object")
            }
            var values: [String: JSONValue] = [:]
            for field in fields.keys.sorted() {
                guard let raw = fields[field], raw != .null else { continue }
                do {
                    values[field] = try SettingsSchema.normalize(raw, forKey: field)
                } catch {
                    return .unmapped("cluster settings field \(field) is invalid: \(HostError.wrapping(error).message)")
                }
            }
            return .settings(cluster: cluster, values: values)
        case .clusterKubeconfig(let cluster):
            guard let json = try? JSONParser.parse(value), let credential = CredentialCodec.parse(json) else {
                return .unmapped("kubeconfig value is neither a JSON string nor an aes-256-gcm envelope")
            }
            switch credential {
            case .plain(let text):
                return .kubeconfig(cluster: cluster, bytes: Array(text.utf8), credential: .plain)
            case .encrypted(let nonce, let sealed):
                guard let masterKey else { return .kubeconfig(cluster: cluster, bytes: value, credential: .movedEncrypted) }
                let plaintext = try CredentialCodec.decrypt(nonce: nonce, sealed: sealed, key: masterKey, label: label)
                return .kubeconfig(cluster: cluster, bytes: Array(plaintext.utf8), credential: .decrypted)
            }
        }
    }
}

/// A legacy record no rule maps: it stays in place.
public struct UnmappedRecord: Sendable, Equatable {
    public var collection: String
    public var key: String
    public var reason: String
}

/// A credential of a cluster and what happens to it.
public struct CredentialNote: Sendable, Equatable {
    /// `collection/key` in the legacy DB.
    public var legacyKey: String
    public var handling: CredentialHandling
}

/// What the migration will do for one cluster.
public struct ClusterPlan: Sendable {
    /// The legacy cluster id, used as the cluster's name.
    public var name: String
    public var id: ClusterID
    /// Rows per target kind: `kv`, `credentials`, `settings`, `kubeconfig`.
    public var countsByKind: [String: Int] = [:]
    /// Up to 5 sample mappings `collection/key -> target`.
    public var samples: [String] = []
    public var credentials: [CredentialNote] = []
    /// Row ids of the records stored in the cluster's `local.db`.
    var storeRowIDs: [Int64] = []
    var settingsRowID: Int64?
    var kubeconfigRowID: Int64?

    /// Every legacy record this cluster takes.
    public var total: Int { countsByKind.values.reduce(0, +) }
    var allRowIDs: [Int64] { storeRowIDs + [settingsRowID, kubeconfigRowID].compactMap { $0 } }
}

/// The plan: every legacy record's fate.
public struct MigrationPlan: Sendable {
    public var sourcePath: String
    public var totalRecords = 0
    public var hostGlobal = 0
    /// Records of clusters other than `--cluster`'s (left in place this run).
    public var otherClusters = 0
    public var clusters: [ClusterPlan] = []
    /// Unmapped records (at most ``unmappedListLimit`` listed); ``unmappedCount`` counts all.
    public var unmapped: [UnmappedRecord] = []
    public var unmappedCount = 0
    /// `clusters` records whose id is not a usable cluster name, with the reason.
    public var invalidClusterIDs: [String: String] = [:]
    /// CSV rows that name no record of the legacy DB.
    public var unusedMappingRows: [MappingCSV.Entry] = []
    public var knownClusters: [String] = []

    public static let unmappedListLimit = 10_000
    public static let sampleLimit = 5

    public var migratedRecords: Int { clusters.reduce(0) { $0 + $1.total } }

    /// Builds the plan by streaming every row of `kv` once.
    static func build(
        db: Database, sourcePath: String, mapping: MappingCSV, selected: String?, masterKey: CredentialCodec.MasterKey?
    ) throws -> (MigrationPlan, RecordResolver) {
        var plan = MigrationPlan(sourcePath: sourcePath)
        var known = Set<String>()
        for value in try DatabaseValue.fetchAll(db, sql: "SELECT key FROM kv WHERE collection = 'clusters'") {
            guard let name = LegacySource.text(value) else { continue }
            do {
                _ = try ClusterID(name: name)
                known.insert(name)
            } catch {
                plan.invalidClusterIDs[name] = HostError.wrapping(error).message
            }
        }
        known.formUnion(mapping.clusters)
        if let selected { known.insert(selected) }
        plan.knownClusters = known.sorted()
        let resolver = RecordResolver(knownClusters: known, mapping: mapping)

        var byCluster: [String: ClusterPlan] = [:]
        var mappingHits = Set<String>()
        let cursor = try Row.fetchCursor(db, sql: "SELECT rowid, collection, key, value FROM kv")
        while let row = try cursor.next() {
            plan.totalRecords += 1
            let rowValue: DatabaseValue = row[0]
            guard case .int64(let rowid) = rowValue.storage else { continue }
            let collection = LegacySource.text(row[1]) ?? ""
            let key = LegacySource.text(row[2]) ?? ""
            if !mapping.isEmpty, mapping.cluster(collection: collection, key: key) != nil {
                mappingHits.insert(collection + "\u{0}" + key)
            }
            let prepared = try PreparedRecord.prepare(
                collection: collection, key: key, value: LegacySource.bytes(row[3]), resolver: resolver,
                masterKey: masterKey, validate: true)
            let cluster: String
            let kind: String
            let target: String
            var credential: CredentialHandling?
            switch prepared {
            case .hostGlobal:
                plan.hostGlobal += 1
                continue
            case .unmapped(let reason):
                plan.unmappedCount += 1
                if plan.unmapped.count < Self.unmappedListLimit {
                    plan.unmapped.append(UnmappedRecord(collection: collection, key: key, reason: reason))
                }
                continue
            case .kv(let name, let targetKey, _, let handling):
                cluster = name
                kind = handling == nil ? "kv" : "credentials"
                target = "key \(targetKey)"
                credential = handling
            case .settings(let name, _):
                cluster = name
                kind = "settings"
                target = "settings.json"
            case .kubeconfig(let name, _, let handling):
                cluster = name
                kind = "kubeconfig"
                target = handling == .movedEncrypted ? "kubeconfig.enc" : "kubeconfig"
                credential = handling
            }
            if let selected, cluster != selected {
                plan.otherClusters += 1
                continue
            }
            var entry: ClusterPlan
            if let existing = byCluster[cluster] {
                entry = existing
            } else {
                entry = ClusterPlan(name: cluster, id: try ClusterID(name: cluster))
            }
            switch kind {
            case "settings":
                if entry.settingsRowID != nil {
                    plan.unmappedCount += 1
                    plan.unmapped.append(UnmappedRecord(collection: collection, key: key, reason: "a second settings record for cluster \(cluster)"))
                    continue
                }
                entry.settingsRowID = rowid
            case "kubeconfig":
                if entry.kubeconfigRowID != nil {
                    plan.unmappedCount += 1
                    plan.unmapped.append(UnmappedRecord(collection: collection, key: key, reason: "a second kubeconfig for cluster \(cluster)"))
                    continue
                }
                entry.kubeconfigRowID = rowid
            default:
                entry.storeRowIDs.append(rowid)
            }
            entry.countsByKind[kind, default: 0] += 1
            if entry.samples.count < Self.sampleLimit { entry.samples.append("\(collection)/\(key) -> \(target)") }
            if let credential { entry.credentials.append(CredentialNote(legacyKey: "\(collection)/\(key)", handling: credential)) }
            byCluster[cluster] = entry
        }
        plan.clusters = byCluster.values.sorted { $0.name < $1.name }
        plan.unusedMappingRows = mapping.entries.filter { !mappingHits.contains($0.collection + "\u{0}" + $0.key) }
        return (plan, resolver)
    }

    /// The plan as the operator reads it.
    public func render(masterKeyGiven: Bool) -> String {
        var lines: [String] = []
        lines.append("source: \(sourcePath)")
        lines.append("records: \(totalRecords) total, \(migratedRecords) to migrate into \(clusters.count) cluster(s), \(hostGlobal) host-wide (stay), \(otherClusters) of other clusters (not selected), \(unmappedCount) unmapped (stay)")
        for cluster in clusters {
            let kinds = cluster.countsByKind.keys.sorted().map { "\($0)=\(cluster.countsByKind[$0] ?? 0)" }.joined(separator: " ")
            lines.append("cluster \(cluster.name) (dir clusters/\(cluster.id.key)): \(cluster.total) records: \(kinds)")
            for sample in cluster.samples { lines.append("  sample: \(sample)") }
            for note in cluster.credentials {
                let text: String
                switch note.handling {
                case .plain: text = "plain (not encrypted)"
                case .decrypted: text = "encrypted, will be decrypted with the master key"
                case .movedEncrypted: text = "encrypted, moves still encrypted (no master key given)"
                }
                lines.append("  credential \(note.legacyKey): \(text)")
            }
        }
        for (name, reason) in invalidClusterIDs.sorted(by: { $0.key < $1.key }) {
            lines.append("invalid cluster id \(String(reflecting: name)): \(reason)")
        }
        for record in unmapped {
            lines.append("unmapped \(record.collection)/\(record.key): \(record.reason)")
        }
        if unmappedCount > unmapped.count { lines.append("… and \(unmappedCount - unmapped.count) more unmapped records") }
        for row in unusedMappingRows {
            lines.append("mapping line \(row.line): \(row.collection)/\(row.key) is not in the legacy database")
        }
        if !masterKeyGiven && clusters.contains(where: { $0.credentials.contains { $0.handling == .movedEncrypted } }) {
            lines.append("note: encrypted credentials move still encrypted; set the master key variable to decrypt them")
        }
        return lines.joined(separator: "\n")
    }
}
