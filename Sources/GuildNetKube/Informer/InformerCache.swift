import GuildNetCore

/// The key of a cached object: namespace (empty for cluster-scoped objects) and name.
public struct InformerKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var namespace: String
    public var name: String

    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }

    /// The key of an object from its `metadata`; nil when it has no name.
    init?(of object: JSONValue) {
        guard case .object(let members) = object, case .object(let metadata)? = members["metadata"],
            case .string(let name)? = metadata["name"]
        else { return nil }
        self.name = name
        if case .string(let namespace)? = metadata["namespace"] { self.namespace = namespace } else { self.namespace = "" }
    }

    public static func < (a: InformerKey, b: InformerKey) -> Bool { (a.namespace, a.name) < (b.namespace, b.name) }

    /// `namespace/name`, or `name` for cluster-scoped objects.
    public var description: String { namespace.isEmpty ? name : "\(namespace)/\(name)" }
}

/// The objects of one informer keyed by namespace/name. Applying a watch event is O(1); replacing
/// the contents after a list is O(n) and yields the differences as events.
struct InformerCache {
    private(set) var objects: [InformerKey: JSONValue] = [:]

    var count: Int { objects.count }

    subscript(key: InformerKey) -> JSONValue? { objects[key] }

    /// Applies one object event; returns the change it made (nil: nothing changed, or no key).
    mutating func apply(_ type: KubeWatchEvent.EventType, _ object: JSONValue) -> InformerEvent? {
        guard let key = InformerKey(of: object) else { return nil }
        switch type {
        case .added, .modified:
            return objects.updateValue(object, forKey: key) == nil ? .added(object) : .modified(object)
        case .deleted:
            return objects.removeValue(forKey: key) == nil ? nil : .deleted(object)
        case .bookmark, .error:
            return nil
        }
    }

    /// Replaces the contents with a complete list; returns the differences (added, modified when
    /// the resourceVersion changed, deleted with their last cached state).
    mutating func replace(with items: [JSONValue]) -> [InformerEvent] {
        var fresh: [InformerKey: JSONValue] = [:]
        fresh.reserveCapacity(items.count)
        var changes: [InformerEvent] = []
        for item in items {
            guard let key = InformerKey(of: item) else { continue }
            fresh[key] = item
            if let old = objects[key] {
                if Self.resourceVersion(old) != Self.resourceVersion(item) || Self.resourceVersion(item) == nil && old != item {
                    changes.append(.modified(item))
                }
            } else {
                changes.append(.added(item))
            }
        }
        for (key, old) in objects where fresh[key] == nil {
            changes.append(.deleted(old))
        }
        objects = fresh
        return changes
    }

    static func resourceVersion(_ object: JSONValue) -> String? {
        object["metadata"]?["resourceVersion"]?.stringValue
    }
}
