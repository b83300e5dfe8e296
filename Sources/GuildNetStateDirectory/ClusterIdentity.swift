import GuildNetCore

/// `clusters/<id>/cluster.json`: the operator's name for a directory's key, so two names that map
/// to one key never share a directory, even across restarts. Written by `cluster.register` and the
/// migration; checked by both before they touch the directory.
public struct ClusterIdentity: Sendable, Equatable {
    public var name: String
    public var key: String
    /// The kubeconfig context the cluster was registered with, if one was named.
    public var context: String?

    public init(name: String, key: String, context: String? = nil) {
        self.name = name
        self.key = key
        self.context = context
    }

    public init(_ cluster: ClusterID, context: String? = nil) {
        self.init(name: cluster.name, key: cluster.key, context: context)
    }

    /// The record as stored: pretty JSON with sorted keys.
    public var encoded: [UInt8] {
        var fields: [String: JSONValue] = ["name": .string(name), "key": .string(key)]
        if let context { fields["context"] = .string(context) }
        return JSONValue.object(fields).serialized + [UInt8(ascii: "\n")]
    }

    /// Parses a stored record.
    public static func decode(_ bytes: [UInt8]) -> ClusterIdentity? {
        guard case .object(let fields)? = try? JSONParser.parse(bytes),
            let name = fields["name"]?.stringValue, let key = fields["key"]?.stringValue
        else { return nil }
        return ClusterIdentity(name: name, key: key, context: fields["context"]?.stringValue)
    }

    /// The identity stored in `paths`, or `nil` when there is none.
    /// - Throws: `io_error` when it cannot be read or is not a valid record.
    public static func read(_ paths: ClusterPaths) throws(HostError) -> ClusterIdentity? {
        let bytes: [UInt8]?
        do {
            bytes = try AtomicFile.read(paths.identity, limit: 64 << 10)
        } catch {
            throw HostError(.io, "cannot read the identity record: \(error.description)")
        }
        guard let bytes else { return nil }
        guard let identity = decode(bytes) else {
            throw HostError(.io, "\(paths.identity) is not a valid identity record; move it aside to reuse this directory")
        }
        return identity
    }

    /// Refuses a directory that belongs to another cluster name.
    /// - Throws: `cluster_id_collision`, or `io_error` for an unreadable record.
    public static func check(_ paths: ClusterPaths, belongsTo cluster: ClusterID) throws(HostError) {
        guard let stored = try read(paths) else { return }
        guard stored.name == cluster.name else {
            throw HostError(
                .clusterIDCollision,
                "directory \(paths.directory) belongs to cluster \(String(reflecting: stored.name)), not \(String(reflecting: cluster.name))")
        }
    }

    /// Writes the record atomically (mode 0600).
    /// - Throws: `io_error`.
    public func write(to paths: ClusterPaths) throws(HostError) {
        do {
            try AtomicFile.write(encoded, to: paths.identity)
        } catch {
            throw HostError(.io, "cannot write the identity record: \(error.description)")
        }
    }
}
