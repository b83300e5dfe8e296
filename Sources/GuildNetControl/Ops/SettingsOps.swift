import GuildNetCore
import GuildNetRuntime
import GuildNetSettings

/// `settings.get`, `settings.set`. Secret values are always redacted in replies.
enum SettingsOps {
    static let all: [ControlOp] = [
        ControlOp("settings.get", fields: ["cluster", "key"]) { params, context in
            let settings = try await context.cluster(params).settings
            if let key = try params.optionalString("key") {
                try SettingsSchema.validateKey(key)
                guard let setting = await settings.effective(key) else {
                    throw HostError(.keyNotFound, "setting \(String(reflecting: key)) is not set in any layer")
                }
                return ["settings": .object([key: render(setting)])]
            }
            var all: [String: JSONValue] = [:]
            for setting in await settings.effectiveAll() { all[setting.key] = render(setting) }
            return ["settings": .object(all)]
        },
        ControlOp("settings.set", fields: ["cluster", "settings", "key", "value"]) { params, context in
            var values = try params.optionalObject("settings") ?? [:]
            if let key = try params.optionalString("key") {
                values[key] = try params.value("value")
            } else if params.fields["value"] != nil {
                throw HostError(.missingField, "op settings.set needs field \"key\" with \"value\"")
            }
            guard !values.isEmpty else {
                throw HostError(.missingField, "op settings.set needs \"settings\" (an object) or \"key\" and \"value\"")
            }
            let updated = try await context.cluster(params).settings.set(values)
            var rendered: [String: JSONValue] = [:]
            for setting in updated { rendered[setting.key] = render(setting) }
            return ["settings": .object(rendered)]
        },
    ]

    static func render(_ setting: EffectiveSetting) -> JSONValue {
        [
            "value": setting.displayValue, "source": .string(setting.layer.rawValue), "origin": .string(setting.origin),
            "secret": .bool(setting.isSecret),
        ]
    }
}
