import GuildNetCore

/// Encodes reply lines: `{"id":…,"ok":true,"result":…}` and
/// `{"id":…,"ok":false,"error":{"code":…,"message":…,"transient":…}}`.
public enum ControlReply {
    public static func success(id: JSONValue, result: JSONValue) -> [UInt8] {
        JSONValue.object(["id": id, "ok": true, "result": result]).serialized
    }

    public static func failure(id: JSONValue, error: HostError) -> [UInt8] {
        JSONValue.object([
            "id": id,
            "ok": false,
            "error": error.json,
        ]).serialized
    }
}
