import GuildNetCore

/// GuildNet's `~/.guildnet/config.json` (Go `config.Config`), read into the global layer.
///
/// | field | key |
/// |---|---|
/// | `login_server` | `ts_login_server` |
/// | `auth_key` | `tailscale.auth_key` (secret) |
/// | `hostname` | `tailscale.hostname` |
/// | `listen_local` | `listen_local` |
/// | `dial_timeout_ms` | `dial_timeout_ms` (0 is unset) |
/// | `name` | `name` |
/// | legacy `workspace_domain`, `ingress_class_name`, `workspace_tls_secret`, `ingress_auth_url`, `ingress_auth_signin` | `ingress_domain`, and the same names |
///
/// Empty strings are "not set" (Go writes them for absent values). Any other field (`allowlist`
/// included: hostapp has no use for it) is a warning.
public enum GuildNetConfigJSON {
    /// Field → settings key.
    public static let fields: [String: String] = [
        "login_server": "ts_login_server",
        "auth_key": "tailscale.auth_key",
        "hostname": "tailscale.hostname",
        "listen_local": "listen_local",
        "dial_timeout_ms": "dial_timeout_ms",
        "name": "name",
        "workspace_domain": "ingress_domain",
        "ingress_class_name": "ingress_class_name",
        "workspace_tls_secret": "workspace_tls_secret",
        "ingress_auth_url": "ingress_auth_url",
        "ingress_auth_signin": "ingress_auth_signin",
    ]

    /// Reads and maps the file at `path`.
    /// - Throws: ``HostError`` `config_invalid` naming the file, line and field.
    public static func read(path: String) throws(HostError) -> SourceReading {
        try parse(SourceText.read(path, what: "GuildNet config"), path: path)
    }

    /// Maps the contents of a `config.json`.
    public static func parse(_ bytes: [UInt8], path: String) throws(HostError) -> SourceReading {
        let top = try SourceText.object(bytes, path: path)
        var reading = SourceReading(path: path)
        for field in top.keys.sorted() {
            guard let raw = top[field] else { continue }
            guard let key = fields[field] else {
                reading.warnings.append("\(path): field \(field) is not a hostapp setting; ignored")
                continue
            }
            if SourceText.isUnset(raw) || (field == "dial_timeout_ms" && raw.intValue == 0) { continue }
            reading.values[key] = try SourceText.normalize(raw, key: key, path: path, field: field, section: nil, bytes: bytes)
        }
        return reading
    }
}
