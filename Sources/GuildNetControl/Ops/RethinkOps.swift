import GuildNetCore
import GuildNetRethink
import GuildNetRuntime

/// `rethink.query`, `rethink.changes`, `rethink.unsubscribe`, `rethink.status`, `rethink.warmup`
/// through the cluster's own RethinkDB connector.
enum RethinkOps {
    static let maxFeedBuffer: Int64 = 1_000_000

    static let all: [ControlOp] = [
        ControlOp("rethink.query", fields: ["cluster", "query"]) { params, context in
            let term = try ReQL(json: try params.value("query"))
            guard !term.isChangefeed else {
                throw HostError(.invalidField, "field \"query\" is a changefeed; use rethink.changes")
            }
            let connector = try await context.cluster(params).rethink.connector()
            return ["result": try await connector.run(term)]
        },
        ControlOp("rethink.changes", fields: ["cluster", "query", "primary_key", "buffer", "overflow"]) { params, context in
            let term = try ReQL(json: try params.value("query"))
            guard term.isChangefeed else {
                throw HostError(.invalidField, "field \"query\" must end with a changes step, e.g. {\"table\":\"t\",\"changes\":true}")
            }
            let buffer = try params.optionalInt("buffer", in: 1...maxFeedBuffer)
            var overflow: ChangefeedOverflowPolicy?
            if let text = try params.optionalString("overflow") {
                guard let policy = ChangefeedOverflowPolicy(rawValue: text) else {
                    let choices = ChangefeedOverflowPolicy.allCases.map(\.rawValue).joined(separator: ", ")
                    throw HostError(.invalidField, "field \"overflow\" must be one of \(choices)")
                }
                overflow = policy
            }
            let cluster = try await context.cluster(params)
            let connector = try await cluster.rethink.connector()
            let subscription = try await connector.subscribe(
                term, primaryKey: try params.optionalString("primary_key") ?? "id", bufferLimit: buffer.map { Int($0) },
                overflow: overflow)
            let feedID = subscription.id
            let sub: String
            do {
                sub = try context.subscribe(
                    EventSubscription(
                        kind: "rethink.change",
                        cluster: cluster.id,
                        events: subscription.events,
                        render: render,
                        final: nil,
                        cancel: { await connector.unsubscribe(feedID) }
                    ),
                    idPrefix: "feed")
            } catch {
                await connector.unsubscribe(feedID)
                throw error
            }
            return ["sub": .string(sub)]
        },
        ControlOp("rethink.unsubscribe", fields: ["cluster", "sub"]) { params, context in
            let sub = try params.string("sub")
            try await context.unsubscribe(sub, kind: "rethink.change")
            return ["sub": .string(sub), "ended": true]
        },
        ControlOp("rethink.status", fields: ["cluster"]) { params, context in
            .object(await (try await context.cluster(params)).rethink.details())
        },
        ControlOp("rethink.warmup", fields: ["cluster"]) { params, context in
            let rethink = try await context.cluster(params).rethink
            let info = try await rethink.connector().warmup()
            var reply = await rethink.details()
            reply["server"] = info
            return .object(reply)
        },
    ]

    /// One changefeed event as the fields of a `rethink.change` event line.
    @Sendable static func render(_ event: ChangefeedEvent) -> [String: JSONValue] {
        switch event {
        case .change(let old, let new): ["type": "change", "old_val": old ?? .null, "new_val": new ?? .null]
        case .state(let state): ["type": "state", "state": .string(state)]
        case .gap(let reason): ["type": "gap", "reason": reason.json]
        case .resumed: ["type": "resumed"]
        case .ended(let reason): ["type": "end", "reason": reason.map(\.json) ?? .null]
        }
    }
}
