import GuildNetCore
import GuildNetRuntime
import GuildNetStore

/// `db.put`, `db.get`, `db.delete`, `db.list` on the cluster's own SQLite store.
enum StoreOps {
    /// Longest key accepted, in UTF-8 bytes.
    static let maxKeyBytes = 1024
    static let defaultListLimit: Int64 = 100
    static let maxListLimit: Int64 = 10_000

    static let all: [ControlOp] = [
        ControlOp("db.put", fields: ["cluster", "key", "value"]) { params, context in
            let key = try validKey(params)
            let value = try params.value("value")
            let item = try await context.cluster(params).store.put(key, value)
            return ["key": .string(item.key), "created_at": .double(item.createdAt), "updated_at": .double(item.updatedAt)]
        },
        ControlOp("db.get", fields: ["cluster", "key"]) { params, context in
            let key = try validKey(params)
            guard let item = try await context.cluster(params).store.get(key) else {
                throw HostError(.keyNotFound, "key \(String(reflecting: key)) not found")
            }
            return render(item)
        },
        ControlOp("db.delete", fields: ["cluster", "key"]) { params, context in
            let key = try validKey(params)
            return ["key": .string(key), "deleted": .bool(try await context.cluster(params).store.delete(key))]
        },
        ControlOp("db.list", fields: ["cluster", "prefix", "after", "limit"]) { params, context in
            let prefix = try params.optionalString("prefix") ?? ""
            let after = try params.optionalString("after")
            let limit = try params.optionalInt("limit", in: 1...maxListLimit) ?? defaultListLimit
            let items = try await context.cluster(params).store.list(prefix: prefix, after: after, limit: Int(limit))
            let next: JSONValue = items.count == Int(limit) ? .string(items.last?.key ?? "") : .null
            return ["items": .array(items.map(render)), "next": next]
        },
    ]

    static func validKey(_ params: ControlParams) throws(HostError) -> String {
        let key = try params.string("key")
        guard !key.isEmpty else { throw HostError(.invalidField, "field \"key\" must not be empty") }
        guard key.utf8.count <= maxKeyBytes else {
            throw HostError(.invalidField, "field \"key\" is \(key.utf8.count) bytes long; the limit is \(maxKeyBytes)")
        }
        return key
    }

    static func render(_ item: StoredItem) -> JSONValue {
        ["key": .string(item.key), "value": item.value, "created_at": .double(item.createdAt), "updated_at": .double(item.updatedAt)]
    }
}
