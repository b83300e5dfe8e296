import Crypto

/// The canonical, filesystem-safe key of a cluster, derived from the name an operator gives it
/// (a kubeconfig context name, an API URL, an EKS ARN…).
///
/// Normalization rules (see docs/architecture.md, "Cluster identity"):
/// 1. A name that is already safe — 1 to 63 characters from `[a-z0-9._-]`, starting with a letter
///    or digit — is its own key: `prod-eu` → `prod-eu`.
/// 2. Any other usable name becomes a slug of its safe characters (lower-cased, every run of other
///    characters folded to `-`, at most 40 characters) followed by `-` and the first 10 hex digits of
///    the SHA-256 of the exact name: `Prod EU` → `prod-eu-3f1c…`. Two names that differ in any byte
///    therefore get different keys; the registry still refuses an id whose stored name differs
///    (``ClusterIDError``), so a collision can never merge two clusters silently.
/// 3. A name that is empty, longer than 253 UTF-8 bytes, contains control characters, or has no
///    letter or digit at all is rejected.
public struct ClusterID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The filesystem-safe key, used for paths, registry keys and the `cluster_id` label.
    public let key: String
    /// The exact name the operator gave.
    public let name: String

    /// Longest accepted operator name, in UTF-8 bytes (a DNS name's limit).
    public static let maxNameBytes = 253
    static let maxSafeKeyLength = 63
    static let maxSlugLength = 40
    static let hashHexDigits = 10

    /// Normalizes an operator-given name.
    /// - Throws: ``HostError`` with code ``ErrorCode/invalidClusterName`` when the name is unusable.
    public init(name: String) throws(HostError) {
        let utf8 = Array(name.utf8)
        guard !utf8.isEmpty else {
            throw HostError(.invalidClusterName, "cluster name is empty")
        }
        guard utf8.count <= Self.maxNameBytes else {
            throw HostError(.invalidClusterName, "cluster name is \(utf8.count) bytes long; the limit is \(Self.maxNameBytes)")
        }
        if name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw HostError(.invalidClusterName, "cluster name contains control characters")
        }
        if Self.isSafeKey(name) {
            self.key = name
            self.name = name
            return
        }
        let slug = Self.slug(name)
        guard !slug.isEmpty else {
            throw HostError(.invalidClusterName, "cluster name \(String(reflecting: name)) has no letter or digit")
        }
        let digest = SHA256.hash(data: utf8)
        let hex = digest.prefix(Self.hashHexDigits / 2 + 1).map { byte in
            let h = String(byte, radix: 16)
            return h.count == 1 ? "0" + h : h
        }.joined()
        self.key = slug + "-" + String(hex.prefix(Self.hashHexDigits))
        self.name = name
    }

    /// Rebuilds an id from a key read back from disk (a directory under `clusters/`) together with
    /// the name stored beside it.
    /// - Throws: ``HostError`` with ``ErrorCode/invalidClusterName`` when the key is not safe or the
    ///   name does not normalize to it.
    public init(key: String, name: String) throws(HostError) {
        let derived = try ClusterID(name: name)
        guard derived.key == key else {
            throw HostError(.invalidClusterName, "stored cluster name \(String(reflecting: name)) does not normalize to key \(key)")
        }
        self = derived
    }

    /// Whether `candidate` is a key as-is: 1–63 characters of `[a-z0-9._-]`, first a letter or digit.
    public static func isSafeKey(_ candidate: String) -> Bool {
        let bytes = Array(candidate.utf8)
        guard !bytes.isEmpty, bytes.count <= maxSafeKeyLength, isAlnum(bytes[0]) else { return false }
        return bytes.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
    }

    private static func isAlnum(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }

    private static func slug(_ name: String) -> String {
        var out: [UInt8] = []
        var pendingDash = false
        for var byte in name.utf8 {
            if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte += 32 }
            if isAlnum(byte) {
                if pendingDash && !out.isEmpty { out.append(UInt8(ascii: "-")) }
                pendingDash = false
                out.append(byte)
                if out.count >= maxSlugLength { break }
            } else {
                pendingDash = true
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    public var description: String { key }

    public static func < (lhs: ClusterID, rhs: ClusterID) -> Bool { lhs.key < rhs.key }

    public static func == (lhs: ClusterID, rhs: ClusterID) -> Bool { lhs.key == rhs.key && lhs.name == rhs.name }

    public func hash(into hasher: inout Hasher) { hasher.combine(key) }
}
