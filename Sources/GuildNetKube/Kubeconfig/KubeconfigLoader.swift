import Foundation
import GuildNetCore
import Yams

/// Loads kubeconfig files with kubectl's rules:
/// - an explicit path is that file only, and it must exist;
/// - a `KUBECONFIG` list (`:`-separated) merges its files, missing ones ignored: for clusters,
///   users and contexts the first file that defines a name wins the whole entry (no per-field
///   merge), and the first file that sets `current-context` wins;
/// - relative paths inside a file (`certificate-authority`, `client-certificate`, `client-key`,
///   `tokenFile`, an exec `command` containing `/`) resolve against that file's directory.
public enum KubeconfigLoader {
    /// The largest kubeconfig file accepted (4 MiB: a context with inlined certificates is a few KiB).
    public static let maxBytes = 4 << 20

    /// Loads one file (it must exist).
    public static func load(path: String) throws -> KubeconfigDocument {
        if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size > maxBytes {
            throw tooLarge(path)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HostError(.kubeconfigInvalid, "kubeconfig \(path) \(FileAccess.whyUnreadable(path) ?? "cannot be read")")
        }
        return try resolveRelativePaths(parse(data, source: path), relativeTo: (path as NSString).deletingLastPathComponent)
    }

    /// Loads and merges a `KUBECONFIG`-style list; missing files are skipped; at least one must exist.
    public static func load(list: String) throws -> KubeconfigDocument {
        let paths = list.split(separator: ":", omittingEmptySubsequences: true).map(String.init)
        var merged = KubeconfigDocument()
        var found = false
        for path in paths where FileManager.default.fileExists(atPath: path) {
            found = true
            merge(try load(path: path), into: &merged)
        }
        guard found else {
            throw HostError(
                .kubeconfigInvalid,
                "none of the kubeconfig files \(paths.joined(separator: ", ")) exists (a list is read as KUBECONFIG: paths separated by \":\")")
        }
        return merged
    }

    /// Parses YAML (or JSON) kubeconfig text.
    /// - Throws: `kubeconfig_invalid` for text over ``maxBytes``, not UTF-8, not YAML or not a kubeconfig.
    public static func parse(_ data: Data, source: String) throws -> KubeconfigDocument {
        guard data.count <= maxBytes else { throw tooLarge(source) }
        guard let text = String(data: data, encoding: .utf8) else {
            throw HostError(.kubeconfigInvalid, "kubeconfig \(source) is not UTF-8 text")
        }
        guard text.contains(where: { !$0.isWhitespace }) else {
            throw HostError(.kubeconfigInvalid, "kubeconfig \(source) is empty")
        }
        do {
            return try YAMLDecoder().decode(KubeconfigDocument.self, from: text)
        } catch let error as DecodingError where Self.isTopLevel(error) {
            throw HostError(
                .kubeconfigInvalid, "kubeconfig \(source) is not a kubeconfig: its top level must be a YAML mapping (apiVersion, clusters, users, contexts)")
        } catch let error as DecodingError {
            throw HostError(.kubeconfigInvalid, "kubeconfig \(source): \(describe(error))")
        } catch {
            throw HostError(.kubeconfigInvalid, "kubeconfig \(source) is not valid YAML")
        }
    }

    /// Whether `text` parses as a kubeconfig naming at least one cluster (how a stored credential
    /// is told apart from ciphertext or junk).
    public static func isKubeconfig(_ text: String) -> Bool {
        guard let document = try? parse(Data(text.utf8), source: "") else { return false }
        return !(document.clusters ?? []).isEmpty
    }

    static func tooLarge(_ source: String) -> HostError {
        HostError(.kubeconfigInvalid, "kubeconfig \(source) is larger than \(maxBytes) bytes")
    }

    /// YAML text of a kubeconfig (for `clusters/<id>/kubeconfig`).
    public static func renderYAML(_ document: KubeconfigDocument) throws -> String {
        do {
            return try YAMLEncoder().encode(document)
        } catch {
            throw HostError(.internalError, "cannot render kubeconfig")
        }
    }

    /// First definition wins, as kubectl merges.
    static func merge(_ next: KubeconfigDocument, into merged: inout KubeconfigDocument) {
        func add<T>(_ items: [T]?, into target: inout [T]?, name: (T) -> String) {
            var existing = Set((target ?? []).map(name))
            for item in items ?? [] where !existing.contains(name(item)) {
                target = (target ?? []) + [item]
                existing.insert(name(item))
            }
        }
        add(next.clusters, into: &merged.clusters, name: \.name)
        add(next.users, into: &merged.users, name: \.name)
        add(next.contexts, into: &merged.contexts, name: \.name)
        if merged.currentContext == nil || merged.currentContext == "" { merged.currentContext = next.currentContext }
    }

    static func resolveRelativePaths(_ document: KubeconfigDocument, relativeTo directory: String) -> KubeconfigDocument {
        func absolute(_ path: String?) -> String? {
            guard let path, !path.isEmpty, !path.hasPrefix("/") else { return path }
            return directory.isEmpty ? path : directory + "/" + path
        }
        var copy = document
        copy.clusters = document.clusters?.map { entry in
            var entry = entry
            entry.cluster.certificateAuthority = absolute(entry.cluster.certificateAuthority)
            return entry
        }
        copy.users = document.users?.map { entry in
            var entry = entry
            entry.user.clientCertificate = absolute(entry.user.clientCertificate)
            entry.user.clientKey = absolute(entry.user.clientKey)
            entry.user.tokenFile = absolute(entry.user.tokenFile)
            if let command = entry.user.exec?.command, command.contains("/") {
                entry.user.exec?.command = absolute(command)
            }
            return entry
        }
        return copy
    }

    /// A decoding error as a field path, never quoting values.
    /// The document itself has the wrong shape (a scalar or a list, not a mapping).
    static func isTopLevel(_ error: DecodingError) -> Bool {
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return context.codingPath.isEmpty
        default:
            return false
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop { $0 == "." }.description
        }
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "field \(path(context.codingPath)) has the wrong type"
        case .keyNotFound(let key, let context):
            return "field \(path(context.codingPath + [key])) is missing"
        case .dataCorrupted(let context):
            return "field \(path(context.codingPath)) is invalid"
        @unknown default:
            return "invalid document"
        }
    }
}
