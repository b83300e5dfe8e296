import GuildNetCore

/// How a streaming op hands a source of events to its connection.
struct EventSubscription<Element: Sendable>: Sendable {
    /// `k8s.watch`, `rethink.changes`: the op that created it (and names the `event` field).
    var kind: String
    var cluster: ClusterID
    /// The source; it ends when the source ends (cluster unregistered, feed failed) or after `cancel`.
    var events: AsyncStream<Element>
    /// Renders one source element as the event object's own fields (merged after `event`, `sub`, `cluster`).
    var render: @Sendable (Element) -> [String: JSONValue]
    /// The fields of the final event sent when the source ends without the client asking; nil when
    /// the source's own last element is already rendered as the final event.
    var final: (@Sendable () async -> [String: JSONValue])?
    /// Ends the source at the client's request (`k8s.unwatch`, `rethink.unsubscribe`).
    var cancel: @Sendable () async -> Void
}

extension OpContext {
    /// Registers `subscription` on the request's connection and returns its id. Events start flowing
    /// once the reply carrying the id has been queued; each is sent as
    /// `{"event":<kind>,"sub":<id>,"cluster":<name>,…rendered fields}`. When the source ends on its own,
    /// one final event with ``EventSubscription/final`` follows; none after the client cancelled or
    /// the connection closed.
    func subscribe<Element: Sendable>(_ subscription: EventSubscription<Element>, idPrefix: String) throws -> String {
        let streams = try streams()
        guard let output else { throw HostError(.invalidRequest, "this op streams events and needs a connection") }
        let id = streams.makeID(prefix: idPrefix)
        let cancelledByClient = LockedValue(false)
        let header: [String: JSONValue] = [
            "event": .string(subscription.kind), "sub": .string(id), "cluster": .string(subscription.cluster.name),
        ]
        @Sendable func line(_ fields: [String: JSONValue]) -> [UInt8] {
            JSONValue.object(header.merging(fields) { own, _ in own }).serialized
        }
        try streams.register(
            ConnectionStreams.Subscription(
                id: id,
                kind: subscription.kind,
                cluster: subscription.cluster,
                pump: {
                    var sinceYield = 0
                    for await element in subscription.events {
                        await output.send(line(subscription.render(element)))
                        // Buffered events do not suspend: yield now and then so one busy stream
                        // cannot hold an executor thread while other connections' events wait.
                        sinceYield += 1
                        if sinceYield == 32 {
                            sinceYield = 0
                            await Task.yield()
                        }
                    }
                    if let final = subscription.final, !Task.isCancelled && !cancelledByClient.withLock({ $0 }) {
                        await output.send(line(await final()))
                    }
                },
                cancel: {
                    cancelledByClient.withLock { $0 = true }
                    await subscription.cancel()
                }
            ))
        afterReply?.append { streams.start(id) }
        return id
    }

    /// Ends subscription `id` of this connection, which must be of `kind`.
    func unsubscribe(_ id: String, kind: String) async throws {
        try await streams().cancel(id, kind: kind)
    }
}
