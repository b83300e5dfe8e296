import Foundation
import GRDB
import GuildNetCore
import GuildNetKube
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
    /// Encrypted in the legacy DB; decrypted with the master key given.
    case decrypted
    /// Encrypted under the all-zero key (the Go app's key when `GUILDNET_MASTER_KEY` was unset) and
    /// no master key given: decrypted with the all-zero key.
    case decryptedZeroKey = "decrypted_zero_key"
    /// Cannot be read with the key given (or the all-zero key): left in the legacy DB and reported.
    case leftInPlace = "left_in_place"
}

/// The key credentials are read with: the one given, else the all-zero key.
struct CredentialKey {
    var given: GoCredential.MasterKey?

    var key: GoCredential.MasterKey { given ?? .zero }
    var name: String { given == nil ? "the all-zero key (no master key given)" : "the master key given" }
    var decrypted: CredentialHandling { given == nil ? .decryptedZeroKey : .decrypted }

    /// A credential record read: its plaintext and how it was stored, or why it stays in place.
    enum Read {
        case read(record: GoCredential.Record, text: String, handling: CredentialHandling)
        case unreadable(reason: String)
    }

    /// Reads a Go credential record with the Go app's rules; `accept` validates the plaintext.
    func open(_ value: [UInt8], accept: (String) -> Bool) -> Read {
        guard let json = try? JSONParser.parse(value), let record = GoCredential.Record(json) else {
            return .unreadable(reason: "is not a Go credential record (a JSON object with a string value)")
        }
        switch GoCredential.open(record, key: key, keyName: name, accept: accept) {
        case .plain(let text): return .read(record: record, text: text, handling: .plain)
        case .decrypted(let text): return .read(record: record, text: text, handling: decrypted)
        case .unreadable(let reason): return .unreadable(reason: reason)
        }
    }
}

/// One record turned into what the migration writes.
enum PreparedRecord {
    case hostGlobal
    case unmapped(String)
    /// A credential of `cluster` that cannot be read: left in place, reported with the cluster.
    case unreadableCredential(cluster: String, reason: String)
    case kv(cluster: String, key: String, text: String, credential: CredentialHandling?)
    case settings(cluster: String, values: [String: JSONValue])
    case kubeconfig(cluster: String, bytes: [UInt8], credential: CredentialHandling)

    /// Validates and converts a record. `validate` false skips JSON validation of plain store values
    /// (already validated by the plan, in the same read transaction).
    static func prepare(
        collection: String, key: String, value: [UInt8]?, resolver: RecordResolver,
        credentialKey: CredentialKey, validate: Bool
    ) throws -> PreparedRecord {
        guard let value else {
            return LegacyLayout.hostGlobalCollections.contains(collection) ? .hostGlobal : .unmapped("value is NULL or not text")
        }
        let target = resolver.resolve(collection: collection, key: key, value: value)
        switch target {
        case .hostGlobal:
            return .hostGlobal
        case .unmapped(let reason):
            return .unmapped(reason)
        case .clusterKey(let cluster, let targetKey):
            guard let text = String(bytes: value, encoding: .utf8) else { return .unmapped("value is not valid UTF-8") }
            if collection == "credentials" {
                switch credentialKey.open(value, accept: { _ in true }) {
                case .unreadable(let reason):
                    return .unreadableCredential(cluster: cluster, reason: "credential \(reason)")
                case .read(_, _, .plain):
                    return .kv(cluster: cluster, key: targetKey, text: text, credential: .plain)
                case .read(let record, let plaintext, let handling):
                    return .kv(cluster: cluster, key: targetKey, text: record.withPlaintext(plaintext).jsonString, credential: handling)
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
            switch credentialKey.open(value, accept: KubeconfigLoader.isKubeconfig) {
            case .unreadable(let reason):
                return .unreadableCredential(cluster: cluster, reason: "kubeconfig \(reason)")
            case .read(_, let plaintext, let handling):
                return .kubeconfig(cluster: cluster, bytes: Array(plaintext.utf8), credential: handling)
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
    /// Why a credential is left in place (``CredentialHandling/leftInPlace``); never quotes the value.
    public var reason: String?
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
        db: Database, sourcePath: String, mapping: MappingCSV, selected: String?, credentialKey: CredentialKey
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

        // Each cluster's plan is mutated in place in `entries` (never copied out and stored back:
        // that copied its growing row-id array once per row, quadratic in rows per cluster).
        var entries: [ClusterPlan] = []
        var entryIndex: [String: Int] = [:]
        func entry(_ cluster: String) throws -> Int {
            if let index = entryIndex[cluster] { return index }
            entries.append(ClusterPlan(name: cluster, id: try ClusterID(name: cluster)))
            entryIndex[cluster] = entries.count - 1
            return entries.count - 1
        }
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
                credentialKey: credentialKey, validate: true)
            let cluster: String
            let kind: String
            let target: String
            var credential: CredentialHandling?
            switch prepared {
            case .hostGlobal:
                plan.hostGlobal += 1
                continue
            case .unmapped(let reason):
                plan.addUnmapped(UnmappedRecord(collection: collection, key: key, reason: reason))
                continue
            case .unreadableCredential(let name, let reason):
                plan.addUnmapped(UnmappedRecord(collection: collection, key: key, reason: reason + "; left in place"))
                if let selected, name != selected { continue }
                let index = try entry(name)
                entries[index].credentials.append(CredentialNote(legacyKey: "\(collection)/\(key)", handling: .leftInPlace, reason: reason))
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
                target = "kubeconfig"
                credential = handling
            }
            if let selected, cluster != selected {
                plan.otherClusters += 1
                continue
            }
            let index = try entry(cluster)
            switch kind {
            case "settings":
                if entries[index].settingsRowID != nil {
                    plan.addUnmapped(UnmappedRecord(collection: collection, key: key, reason: "a second settings record for cluster \(cluster)"))
                    continue
                }
                entries[index].settingsRowID = rowid
            case "kubeconfig":
                if entries[index].kubeconfigRowID != nil {
                    plan.addUnmapped(UnmappedRecord(collection: collection, key: key, reason: "a second kubeconfig for cluster \(cluster)"))
                    continue
                }
                entries[index].kubeconfigRowID = rowid
            default:
                entries[index].storeRowIDs.append(rowid)
            }
            entries[index].countsByKind[kind, default: 0] += 1
            if entries[index].samples.count < Self.sampleLimit { entries[index].samples.append("\(collection)/\(key) -> \(target)") }
            if let credential { entries[index].credentials.append(CredentialNote(legacyKey: "\(collection)/\(key)", handling: credential)) }
        }
        plan.clusters = entries.sorted { $0.name < $1.name }
        plan.unusedMappingRows = mapping.entries.filter { !mappingHits.contains($0.collection + "\u{0}" + $0.key) }
        return (plan, resolver)
    }

    /// Counts an unmapped record and lists it (up to ``unmappedListLimit``).
    private mutating func addUnmapped(_ record: UnmappedRecord) {
        unmappedCount += 1
        if unmapped.count < Self.unmappedListLimit { unmapped.append(record) }
    }

    /// The plan as the operator reads it.
    public func render(masterKeyGiven: Bool) -> String {
        var lines: [String] = []
        lines.append("source: \(sourcePath)")
        lines.append(
            "records: \(totalRecords) total, \(migratedRecords) to migrate into \(clusters.count) cluster(s), \(hostGlobal) host-wide (stay), \(otherClusters) of other clusters (not selected), \(unmappedCount) unmapped (stay)"
        )
        for cluster in clusters {
            let kinds = cluster.countsByKind.keys.sorted().map { "\($0)=\(cluster.countsByKind[$0] ?? 0)" }.joined(separator: " ")
            lines.append("cluster \(cluster.name) (dir clusters/\(cluster.id.key)): \(cluster.total) records: \(kinds)")
            for sample in cluster.samples { lines.append("  sample: \(sample)") }
            for note in cluster.credentials {
                let text: String
                switch note.handling {
                case .plain: text = "plain (not encrypted)"
                case .decrypted: text = "encrypted, will be decrypted with the master key"
                case .decryptedZeroKey:
                    text = "encrypted under the all-zero key (the Go app's key when GUILDNET_MASTER_KEY was unset), will be decrypted with it"
                case .leftInPlace: text = "cannot be read, stays in the legacy DB: \(note.reason ?? "unreadable")"
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
        let leftInPlace = clusters.contains { $0.credentials.contains { $0.handling == .leftInPlace } }
        if leftInPlace && !masterKeyGiven {
            lines.append(
                "note: some credentials do not decrypt under the all-zero key; give the Go app's GUILDNET_MASTER_KEY (or --master-key-file) and migrate again")
        } else if leftInPlace {
            lines.append(
                "note: some credentials do not decrypt under the master key given; they stay in the legacy DB (is it the Go app's GUILDNET_MASTER_KEY?)")
        }
        if clusters.contains(where: { $0.credentials.contains { $0.handling == .decryptedZeroKey } }) {
            lines.append("note: some credentials were encrypted under the all-zero key (the Go app ran without GUILDNET_MASTER_KEY); they are decrypted")
        }
        return lines.joined(separator: "\n")
    }
}
