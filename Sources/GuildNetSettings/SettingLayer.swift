import GuildNetCore

/// Where an effective setting comes from, highest precedence first:
/// `cli` > `env` > `cluster` > `global` > `default`.
public enum SettingLayer: String, Sendable, Codable, CaseIterable {
    /// Daemon flags `--set KEY=VALUE` (host-wide).
    case cli
    /// `GUILDNET_SETTING_<KEY>` variables from the process environment or the `--env-file` (host-wide).
    case env
    /// The cluster's own `<state-dir>/clusters/<id>/settings.json`.
    case cluster
    /// The global layer: GuildNet's `config.json` (`--guildnet-config`), GuildNet's variables in the
    /// `--env-file`, and the `"settings"` object of the host config file (`--config FILE`).
    case global
    /// Schema defaults (``SettingsSchema/defaults``).
    case defaults = "default"
}

/// One key's resolved value and the layer it came from.
public struct EffectiveSetting: Sendable, Equatable {
    public var key: String
    /// The real value (internal use only; replies and logs use ``displayValue``).
    public var value: JSONValue
    public var layer: SettingLayer
    /// Where the value came from, for `settings.get`: the layer name, or `global:<file>` for a
    /// global value read from a file.
    public var origin: String
    /// `SettingsSchema.isSecret(key)`.
    public var isSecret: Bool
    /// ``value``, or `SecretKeys.redacted` when the key is secret: the only form replies and logs may use.
    /// Inside objects, members whose own names are secret are redacted too.
    public var displayValue: JSONValue

    /// Builds a setting, deriving ``isSecret`` and ``displayValue`` from the key.
    public init(key: String, value: JSONValue, layer: SettingLayer, origin: String? = nil) {
        self.key = key
        self.value = value
        self.layer = layer
        self.origin = origin ?? layer.rawValue
        self.isSecret = SettingsSchema.isSecret(key)
        self.displayValue = Self.displayValue(value, forKey: key)
    }

    /// The form of `value` that may be shown: redacted when `key` is secret, and with every object
    /// member whose name is secret redacted (recursively) otherwise.
    public static func displayValue(_ value: JSONValue, forKey key: String) -> JSONValue {
        if SettingsSchema.isSecret(key) { return SecretKeys.redacted }
        return redactMembers(value)
    }

    private static func redactMembers(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let members):
            var out: [String: JSONValue] = [:]
            for (name, member) in members {
                out[name] = SecretKeys.isSecret(name) ? SecretKeys.redacted : redactMembers(member)
            }
            return .object(out)
        case .array(let elements):
            return .array(elements.map(redactMembers))
        case .null, .bool, .int, .double, .string:
            return value
        }
    }
}
