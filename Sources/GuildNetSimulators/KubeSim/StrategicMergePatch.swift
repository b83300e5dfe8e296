import GuildNetCore

/// Strategic merge patch for the simulated core kinds: like a JSON merge patch, except that lists
/// with a merge key in the core/v1 schema merge element by element on that key (a patch element
/// with `"$patch":"delete"` removes its match), and `$patch: replace` on an object replaces it.
/// Other directives (`$setElementOrder/…`, `$retainKeys`, `$deleteFromPrimitiveList/…`) are ignored.
enum StrategicMergePatch {
    /// List field name → merge key, from the core/v1 types' `patchMergeKey` tags.
    static let mergeKeys: [String: String] = [
        "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
        "env": "name", "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
        "ports": "containerPort", "imagePullSecrets": "name", "hostAliases": "ip",
        "conditions": "type", "tolerations": "key", "finalizers": "",
    ]

    static func apply(_ target: JSONValue, _ patch: JSONValue) -> JSONValue {
        guard case .object(let patchObject) = patch else { return patch }
        if patchObject["$patch"]?.stringValue == "replace" {
            return .object(patchObject.filter { !$0.key.hasPrefix("$") })
        }
        var result = target.objectValue ?? [:]
        for (key, value) in patchObject where !key.hasPrefix("$") {
            if value.isNull {
                result[key] = nil
            } else if case .array(let patchItems) = value, let mergeKey = mergeKeys[key], !mergeKey.isEmpty,
                case .array(let existing)? = result[key]
            {
                result[key] = .array(mergeList(existing, patchItems, on: mergeKey))
            } else if case .object = value {
                result[key] = apply(result[key] ?? .null, value)
            } else {
                result[key] = value
            }
        }
        return .object(result)
    }

    /// Merges `patch` into `existing` by `key`: matching elements merge, `$patch: delete` removes,
    /// new elements are appended in patch order.
    static func mergeList(_ existing: [JSONValue], _ patch: [JSONValue], on key: String) -> [JSONValue] {
        var merged = existing
        for item in patch {
            guard let identity = item[key] else {
                merged.append(item)
                continue
            }
            let index = merged.firstIndex { $0[key] == identity }
            if item["$patch"]?.stringValue == "delete" {
                if let index { merged.remove(at: index) }
            } else if let index {
                merged[index] = apply(merged[index], item)
            } else {
                merged.append(apply(.null, item))
            }
        }
        return merged
    }
}
