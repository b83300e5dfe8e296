import GuildNetCore

/// One event of a watch stream: `{"type": ..., "object": {...}}`.
public struct KubeWatchEvent: Sendable, Equatable {
    public enum EventType: String, Sendable, Hashable {
        case added = "ADDED"
        case modified = "MODIFIED"
        case deleted = "DELETED"
        case bookmark = "BOOKMARK"
        /// The object is a `Status` (see ``KubeAPIError/fromStatusObject(_:request:)``).
        case error = "ERROR"
    }

    public var type: EventType
    public var object: JSONValue

    public init(type: EventType, object: JSONValue) {
        self.type = type
        self.object = object
    }

    /// `object.metadata.resourceVersion`.
    public var resourceVersion: String? { object["metadata"]?["resourceVersion"]?.stringValue }

    /// Decodes one line of a watch body; anything malformed is a `k8s_bad_response`.
    static func decode(line: [UInt8], request: String) throws(HostError) -> KubeWatchEvent {
        let value: JSONValue
        do {
            value = try JSONParser.parse(line)
        } catch {
            throw .kubeBadResponse(request, "watch event is not valid JSON (\(error))")
        }
        guard case .object(let members) = value else { throw .kubeBadResponse(request, "watch event is not a JSON object") }
        guard let typeName = members["type"]?.stringValue, let type = EventType(rawValue: typeName) else {
            throw .kubeBadResponse(request, "watch event has no known type")
        }
        guard let object = members["object"], case .object = object else {
            throw .kubeBadResponse(request, "watch event \(typeName) has no object")
        }
        return KubeWatchEvent(type: type, object: object)
    }
}
