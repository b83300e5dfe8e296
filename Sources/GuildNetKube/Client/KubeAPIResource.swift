import Foundation
import GuildNetCore

/// A Kubernetes API resource (group, version, plural name, scope) and the paths that reach it.
///
/// Named `KubeAPIResource` (not `KubeResource`) so tests can import KubeSim, whose resource enum
/// is `KubeResource`, next to this module.
public struct KubeAPIResource: Sendable, Hashable, CustomStringConvertible {
    /// API group; empty for the core group (`/api/v1`).
    public var group: String
    public var version: String
    /// The plural resource name used in paths (`pods`, `deployments`).
    public var plural: String
    /// `true` for namespaced resources, `false` for cluster-scoped ones (`namespaces`, `nodes`).
    public var namespaced: Bool

    public init(group: String = "", version: String = "v1", plural: String, namespaced: Bool = true) {
        self.group = group
        self.version = version
        self.plural = plural
        self.namespaced = namespaced
    }

    public static let pods = KubeAPIResource(plural: "pods")
    public static let namespaces = KubeAPIResource(plural: "namespaces", namespaced: false)
    public static let services = KubeAPIResource(plural: "services")
    public static let endpoints = KubeAPIResource(plural: "endpoints")
    public static let configmaps = KubeAPIResource(plural: "configmaps")

    /// The core resources every cluster gets an informer for.
    public static let core: [KubeAPIResource] = [.namespaces, .pods, .services, .endpoints, .configmaps]

    /// Cluster-scoped resources known without discovery (everything else is assumed namespaced).
    static let clusterScoped: Set<String> = [
        "namespaces", "nodes", "persistentvolumes", "clusterroles", "clusterrolebindings", "customresourcedefinitions",
        "storageclasses", "priorityclasses", "apiservices", "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations", "csidrivers", "csinodes", "runtimeclasses", "ingressclasses",
    ]

    /// `group/version` as in `apiVersion` (`v1` for the core group).
    public var groupVersion: String { group.isEmpty ? version : "\(group)/\(version)" }

    public var description: String { "\(groupVersion)/\(plural)" }

    /// `/api/v1` or `/apis/<group>/<version>`.
    public var basePath: String { group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)" }

    /// The collection path, in `namespace` when given (and the resource is namespaced), else across
    /// all namespaces.
    public func collectionPath(namespace: String? = nil) -> String {
        if namespaced, let namespace, !namespace.isEmpty {
            return "\(basePath)/namespaces/\(Self.escape(namespace))/\(plural)"
        }
        return "\(basePath)/\(plural)"
    }

    /// The path of one object.
    public func objectPath(namespace: String? = nil, name: String) -> String {
        "\(collectionPath(namespace: namespace))/\(Self.escape(name))"
    }

    /// Parses `pods`, `v1/pods`, `apps/v1/deployments`, or an API path (`/api/v1/pods`,
    /// `/apis/apps/v1/deployments`, `/api/v1/namespaces/x/pods`). Scope comes from the path when it
    /// names a namespace, else from the list of well-known cluster-scoped resources.
    public static func parse(_ text: String) throws(HostError) -> KubeAPIResource {
        let trimmed = text.trimmingCharacters(in: [" "])
        let parts = trimmed.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard !parts.isEmpty, parts.allSatisfy(isPathSegment) else { throw invalid(text) }
        if trimmed.hasPrefix("/") {
            // /api/v1/[namespaces/<ns>/]<plural> or /apis/<group>/<version>/[namespaces/<ns>/]<plural>
            var rest: ArraySlice<String>
            var group = ""
            let version: String
            switch parts[0] {
            case "api" where parts.count >= 3:
                version = parts[1]
                rest = parts[2...]
            case "apis" where parts.count >= 4:
                group = parts[1]
                version = parts[2]
                rest = parts[3...]
            default:
                throw invalid(text)
            }
            var namespacedByPath = false
            if rest.count == 3, rest.first == "namespaces" {
                namespacedByPath = true
                rest = rest.dropFirst(2)
            }
            guard rest.count == 1, let plural = rest.first else { throw invalid(text) }
            return KubeAPIResource(
                group: group, version: version, plural: plural,
                namespaced: namespacedByPath || !clusterScoped.contains(plural))
        }
        switch parts.count {
        case 1:
            return KubeAPIResource(plural: parts[0], namespaced: !clusterScoped.contains(parts[0]))
        case 2:
            return KubeAPIResource(version: parts[0], plural: parts[1], namespaced: !clusterScoped.contains(parts[1]))
        case 3:
            return KubeAPIResource(group: parts[0], version: parts[1], plural: parts[2], namespaced: !clusterScoped.contains(parts[2]))
        default:
            throw invalid(text)
        }
    }

    private static func invalid(_ text: String) -> HostError {
        HostError(
            .invalidField,
            "resource \(String(reflecting: String(text.prefix(200)))) is not a resource name (pods, v1/pods, apps/v1/deployments) or an API path (/apis/apps/v1/deployments)"
        )
    }

    private static func isPathSegment(_ segment: String) -> Bool {
        guard let first = segment.utf8.first, (first >= 97 && first <= 122) || (first >= 48 && first <= 57) || (first >= 65 && first <= 90)
        else { return false }
        return segment.utf8.count <= 253
            && segment.utf8.allSatisfy { b in
                (b >= 97 && b <= 122) || (b >= 48 && b <= 57) || b == UInt8(ascii: "-") || b == UInt8(ascii: ".")
                    || (b >= 65 && b <= 90)
            }
    }

    /// Percent-escapes a path segment or query value (RFC 3986 unreserved bytes pass through).
    static func escape(_ segment: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(segment.utf8.count)
        let hex = Array("0123456789ABCDEF".utf8)
        for b in segment.utf8 {
            if (b >= 97 && b <= 122) || (b >= 65 && b <= 90) || (b >= 48 && b <= 57) || b == UInt8(ascii: "-")
                || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "~")
            {
                out.append(b)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
