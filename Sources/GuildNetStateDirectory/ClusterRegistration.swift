import GuildNetCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `clusters/<id>/registration.json`: the cluster is registered with the daemon, so `hostapp serve`
/// restores it at start (`--restore`). Written by `cluster.register` once the cluster's place is
/// prepared, removed by `cluster.unregister`; the directory itself (DB, settings, kubeconfig) outlives
/// the record, so an unregistered cluster keeps its data but is not restored.
///
/// The record holds no credential: the kubeconfig the cluster was registered with is in
/// ``ClusterPaths/kubeconfig`` and its settings (RethinkDB password included) in
/// ``ClusterPaths/settings``, both mode 0600. Every write goes through ``AtomicFile`` (temp file,
/// fsync, rename, fsync of the directory), so a crash leaves the old record or the new one.
public struct ClusterRegistration: Sendable, Equatable {
    public var name: String
    public var key: String
    /// The kubeconfig context named at registration, if any.
    public var context: String?

    public init(name: String, key: String, context: String? = nil) {
        self.name = name
        self.key = key
        self.context = context
    }

    public init(_ cluster: ClusterID, context: String? = nil) {
        self.init(name: cluster.name, key: cluster.key, context: context)
    }

    /// The record format's version, stored so a later format can be told apart.
    public static let version: Int64 = 1

    /// The record as stored: JSON with sorted keys.
    public var encoded: [UInt8] {
        var fields: [String: JSONValue] = ["name": .string(name), "key": .string(key), "version": .int(Self.version)]
        if let context { fields["context"] = .string(context) }
        return JSONValue.object(fields).serialized + [UInt8(ascii: "\n")]
    }

    /// Parses a stored record; `nil` when it is not one.
    public static func decode(_ bytes: [UInt8]) -> ClusterRegistration? {
        guard case .object(let fields)? = try? JSONParser.parse(bytes),
            let name = fields["name"]?.stringValue, let key = fields["key"]?.stringValue
        else { return nil }
        return ClusterRegistration(name: name, key: key, context: fields["context"]?.stringValue)
    }

    /// Writes the record atomically and durably (mode 0600).
    /// - Throws: `io_error`.
    public func write(to paths: ClusterPaths) throws(HostError) {
        do {
            try AtomicFile.write(encoded, to: paths.registration)
        } catch {
            throw HostError(.io, "cannot write the registration record: \(error.description)")
        }
    }

    /// Removes the record of `paths` durably; a missing record is not an error.
    /// - Throws: `io_error`.
    public static func remove(_ paths: ClusterPaths) throws(HostError) {
        if unlink(paths.registration) != 0 && errno != ENOENT {
            throw HostError(.io, "cannot remove \(paths.registration): \(String(cString: strerror(errno)))")
        }
        AtomicFile.syncDirectory(paths.directory)
    }
}

/// What ``ClusterRegistration/all(in:)`` found: the records, and the directories whose record
/// could not be used (with the reason), which the daemon logs and skips.
public struct ClusterRegistrationScan: Sendable {
    public var registrations: [ClusterRegistration] = []
    public var skipped: [(directory: String, reason: String)] = []
}

extension ClusterRegistration {
    /// Every registration record under `stateDirectory/clusters/`, sorted by key. A record that
    /// cannot be read, does not parse, or names a key other than its directory's is skipped.
    public static func all(in stateDirectory: StateDirectory) -> ClusterRegistrationScan {
        var scan = ClusterRegistrationScan()
        for name in directoryNames(stateDirectory.clusters).sorted() {
            let paths = ClusterPaths(directory: stateDirectory.clusters + "/" + name)
            let bytes: [UInt8]?
            do {
                bytes = try AtomicFile.read(paths.registration, limit: 64 << 10)
            } catch {
                scan.skipped.append((paths.directory, error.description))
                continue
            }
            guard let bytes else { continue }
            guard let record = decode(bytes) else {
                scan.skipped.append((paths.directory, "registration.json is not a valid registration record"))
                continue
            }
            guard let id = try? ClusterID(name: record.name), id.key == record.key, record.key == name else {
                scan.skipped.append(
                    (paths.directory, "registration.json names cluster \(String(reflecting: record.name)), which does not map to this directory"))
                continue
            }
            scan.registrations.append(record)
        }
        return scan
    }

    private static func directoryNames(_ path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." && !name.hasPrefix(".") { names.append(name) }
        }
        return names
    }
}
