import GuildNetCore

/// GuildNet's `guildnet.config` join bundle, as `scripts/generate_join_config.sh` writes it
/// (version 2; version 1 from `scripts/create_join_info.sh` is read too):
///
/// ```
/// {"version":2,"created_at":…,"creator":{"host","user"},"ui":{"vite_api_base","ca_pem"},
///  "hostapp":{"url","ca_pem"},"cluster":{"name","kubeconfig","namespace","api_proxy_url",…},
///  "tailscale":{"login_server","preauth_key","hostname"}}
/// ```
///
/// `cluster` members that are settings keys (the Go `settings.Cluster` fields) map to the same
/// key; `cluster.kubeconfig` is the kubeconfig YAML, not a setting. `tailscale.login_server` →
/// `ts_login_server`, `preauth_key` → `tailscale.auth_key` (secret), `hostname` (v1
/// `hostname_suggest`) → `tailscale.hostname`; `hostapp.url`, `hostapp.ca_pem`, `ui.vite_api_base`
/// keep their names. A top-level `settings` object (hostapp's extension, written by
/// ``encode(clusterName:kubeconfig:settings:createdAt:)`` for keys GuildNet has no field for;
/// the Go app ignores it) maps key for key. Anything else is a warning.
public struct JoinBundle: Sendable, Equatable {
    public var version: Int
    /// `cluster.name` (v1: top-level `name`), when non-empty.
    public var clusterName: String?
    /// `cluster.kubeconfig` (YAML), when non-empty.
    public var kubeconfig: String?
    /// The bundle's settings, normalized, for the new cluster's layer.
    public var settings: [String: JSONValue]
    public var warnings: [String]

    /// Fields of the sections that carry no setting (metadata).
    static let metadataFields: Set<String> = ["version", "created_at", "creator", "notes"]
    static let tailscaleFields: [String: String] = [
        "login_server": "ts_login_server", "preauth_key": "tailscale.auth_key", "hostname": "tailscale.hostname",
        "hostname_suggest": "tailscale.hostname",
    ]
    static let hostappFields: [String: String] = ["url": "hostapp.url", "ca_pem": "hostapp.ca_pem"]
    static let uiFields: [String: String] = ["vite_api_base": "ui.vite_api_base", "ca_pem": "hostapp.ca_pem"]
    /// The Go `settings.Cluster` fields (the keys a v2 bundle's `cluster` section carries).
    public static let clusterKeys: Set<String> = [
        "name", "namespace", "api_proxy_url", "api_proxy_force_http", "disable_api_proxy", "prefer_pod_proxy", "use_port_forward",
        "ingress_domain", "ingress_class_name", "workspace_tls_secret", "cert_manager_issuer", "ingress_auth_url",
        "ingress_auth_signin", "image_pull_secret", "workspace_lb_enabled", "org_id", "ts_login_server", "ts_routes",
    ]

    /// Reads the bundle at `path`.
    /// - Throws: ``HostError`` `config_invalid` naming the file, line and field.
    public static func read(path: String) throws(HostError) -> JoinBundle {
        try parse(SourceText.read(path, what: "join bundle"), path: path)
    }

    public static func parse(_ bytes: [UInt8], path: String) throws(HostError) -> JoinBundle {
        let top = try SourceText.object(bytes, path: path)
        guard let versionValue = top["version"] else {
            throw SourceText.error(path, line: 1, field: "version", "missing; a guildnet.config has \"version\": 2")
        }
        guard let version = versionValue.intValue, version == 1 || version == 2 else {
            throw SourceText.error(
                path, line: SourceText.line(ofField: "version", in: bytes), field: "version", "unsupported version (1 and 2 are read)")
        }
        var bundle = JoinBundle(version: Int(version), settings: [:], warnings: [])
        for field in top.keys.sorted() {
            guard let value = top[field], !metadataFields.contains(field) else { continue }
            switch field {
            case "hostapp": try bundle.map(section: field, value, fields: hostappFields, path: path, bytes: bytes)
            case "ui": try bundle.map(section: field, value, fields: uiFields, path: path, bytes: bytes)
            case "tailscale": try bundle.map(section: field, value, fields: tailscaleFields, path: path, bytes: bytes)
            case "cluster": try bundle.mapCluster(value, path: path, bytes: bytes)
            case "settings": try bundle.mapExtension(value, path: path, bytes: bytes)
            case "name" where version == 1:
                if let name = value.stringValue, !name.trimmingSpaces.isEmpty {
                    bundle.clusterName = name.trimmingSpaces
                    bundle.settings["name"] = .string(name.trimmingSpaces)
                }
            default:
                bundle.warnings.append("\(path): field \(field) is not part of a join bundle; ignored")
            }
        }
        return bundle
    }

    private mutating func section(_ name: String, _ value: JSONValue, path: String, bytes: [UInt8]) throws(HostError) -> [String: JSONValue] {
        guard case .object(let members) = value else {
            throw SourceText.error(
                path, line: SourceText.line(ofField: name, in: bytes), field: name, "must be an object, not \(value.typeName)")
        }
        return members
    }

    private mutating func map(section name: String, _ value: JSONValue, fields: [String: String], path: String, bytes: [UInt8]) throws(HostError) {
        for field in try section(name, value, path: path, bytes: bytes).sorted(by: { $0.key < $1.key }) {
            guard let key = fields[field.key] else {
                warnings.append("\(path): field \(name).\(field.key) is not a hostapp setting; ignored")
                continue
            }
            if SourceText.isUnset(field.value) { continue }
            let normalized = try SourceText.normalize(field.value, key: key, path: path, field: field.key, section: name, bytes: bytes)
            if let existing = settings[key], existing != normalized {
                warnings.append("\(path): field \(name).\(field.key) differs from another field for \(key); the first is kept")
                continue
            }
            settings[key] = normalized
        }
    }

    private mutating func mapCluster(_ value: JSONValue, path: String, bytes: [UInt8]) throws(HostError) {
        for field in try section("cluster", value, path: path, bytes: bytes).sorted(by: { $0.key < $1.key }) {
            if field.key == "kubeconfig" {
                guard case .string(let yaml) = field.value else {
                    throw SourceText.error(
                        path, line: SourceText.line(ofField: "kubeconfig", after: "cluster", in: bytes), field: "cluster.kubeconfig",
                        "must be a string holding the kubeconfig YAML, not \(field.value.typeName)")
                }
                if !yaml.trimmingSpaces.isEmpty { kubeconfig = yaml }
                continue
            }
            guard Self.clusterKeys.contains(field.key) else {
                warnings.append("\(path): field cluster.\(field.key) is not a hostapp setting; ignored")
                continue
            }
            if SourceText.isUnset(field.value) { continue }
            settings[field.key] = try SourceText.normalize(field.value, key: field.key, path: path, field: field.key, section: "cluster", bytes: bytes)
            if field.key == "name", let name = settings["name"]?.stringValue { clusterName = name }
        }
    }

    private mutating func mapExtension(_ value: JSONValue, path: String, bytes: [UInt8]) throws(HostError) {
        for field in try section("settings", value, path: path, bytes: bytes).sorted(by: { $0.key < $1.key }) {
            if field.value == .null { continue }
            settings[field.key] = try SourceText.normalize(field.value, key: field.key, path: path, field: field.key, section: "settings", bytes: bytes)
        }
    }

    /// A version 2 bundle for a registered cluster: `settings` split into GuildNet's sections,
    /// keys GuildNet has no field for under `settings`. It holds credentials: write it mode 0600.
    public static func encode(clusterName: String, kubeconfig: String?, settings: [String: JSONValue], createdAt: String) -> [UInt8] {
        var cluster: [String: JSONValue] = ["name": .string(settings["name"]?.stringValue ?? clusterName)]
        if let kubeconfig { cluster["kubeconfig"] = .string(kubeconfig) }
        var tailscale: [String: JSONValue] = [:]
        var hostapp: [String: JSONValue] = [:]
        var ui: [String: JSONValue] = [:]
        var rest: [String: JSONValue] = [:]
        let tailscaleKeys = ["ts_login_server": "login_server", "tailscale.auth_key": "preauth_key", "tailscale.hostname": "hostname"]
        for (key, value) in settings {
            if key == "name" { continue }
            if clusterKeys.contains(key) && key != "ts_login_server" {
                cluster[key] = value
            } else if let field = tailscaleKeys[key] {
                tailscale[field] = value
            } else if key == "hostapp.url" {
                hostapp["url"] = value
            } else if key == "hostapp.ca_pem" {
                hostapp["ca_pem"] = value
            } else if key == "ui.vite_api_base" {
                ui["vite_api_base"] = value
            } else {
                rest[key] = value
            }
        }
        var document: [String: JSONValue] = [
            "version": 2, "created_at": .string(createdAt), "creator": ["host": "hostapp", "user": "hostapp"],
            "cluster": .object(cluster), "tailscale": .object(tailscale), "hostapp": .object(hostapp), "ui": .object(ui),
        ]
        if !rest.isEmpty { document["settings"] = .object(rest) }
        return JSONValue.object(document).serialized + [UInt8(ascii: "\n")]
    }

    /// What `--dry-run` shows: the cluster, whether a kubeconfig is embedded, the settings with
    /// secrets redacted, and the warnings.
    public func redactedPlan(cluster: String) -> JSONValue {
        var shown: [String: JSONValue] = [:]
        for (key, value) in settings { shown[key] = EffectiveSetting.displayValue(value, forKey: key) }
        return [
            "cluster": .string(cluster),
            "kubeconfig": kubeconfig == nil ? "none" : "<redacted>",
            "settings": .object(shown),
            "warnings": .array(warnings.map(JSONValue.string)),
        ]
    }
}
