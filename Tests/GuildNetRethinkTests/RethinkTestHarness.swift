import Foundation
import GuildNetCore
import GuildNetRethink
import GuildNetSimulators
import Logging
import NIOCore
import NIOPosix
import TestSupport

/// Shared setup of the RethinkDB integration tests (RethinkSim over loopback, ephemeral ports).
enum RethinkHarness {
    /// Few PBKDF2 rounds keep handshakes fast; the client uses whatever the server announces.
    static func simOptions(users: [String: String] = ["admin": ""], batchSize: Int = 1000) -> RethinkSimOptions {
        var options = RethinkSimOptions()
        options.users = users
        options.iterations = 256
        options.batchSize = batchSize
        return options
    }

    static func address(_ endpoint: RethinkSimEndpoint) -> RethinkAddress {
        RethinkAddress(host: endpoint.host, port: endpoint.port)
    }

    static func connect(
        _ endpoint: RethinkSimEndpoint, user: String = "admin", password: String = "",
        options: RethinkConnection.Options = RethinkConnection.Options(connectTimeout: .seconds(5))
    ) async throws -> RethinkConnection {
        try await RethinkConnection.connect(to: address(endpoint), user: user, password: password, options: options)
    }

    static func configuration(
        _ endpoint: RethinkSimEndpoint?, password: String = "", maxConnections: Int = 4, maxFeeds: Int = 32,
        feedBufferLimit: Int = 1024, overflow: ChangefeedOverflowPolicy = .dropOldest, queryTimeout: Duration = .seconds(10)
    ) -> RethinkConnectorConfiguration {
        RethinkConnectorConfiguration(
            address: endpoint.map(address), user: "admin", password: password, maxConnections: maxConnections,
            connectTimeout: .seconds(5), queryTimeout: queryTimeout, maxFeeds: maxFeeds, feedBufferLimit: feedBufferLimit,
            feedOverflow: overflow, reconnectBackoff: Backoff(initial: .milliseconds(10), cap: .milliseconds(200)))
    }

    /// Runs a connector with its `run()` as a child task, as a cluster supervisor does; shuts it down after `body`.
    static func withConnector<T: Sendable>(
        _ configuration: RethinkConnectorConfiguration,
        resolve: (@Sendable () async throws -> RethinkAddress)? = nil,
        logger: Logger = Logger(label: "test.rethink"),
        _ body: @Sendable (RethinkConnector) async throws -> T
    ) async throws -> T {
        let connector = RethinkConnector(configuration: configuration, resolveAddress: resolve, logger: logger)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await connector.run()
                return nil
            }
            do {
                let result = try await body(connector)
                await connector.shutdown()
                while try await group.next() != nil {}
                return result
            } catch {
                await connector.shutdown()
                group.cancelAll()
                throw error
            }
        }
    }

    /// A local TCP port nobody listens on (bound, then closed).
    static func closedPort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 1
        try await channel.close()
        return port
    }

    /// This process's TCP sockets connected to `port` on the remote side (client connections to a
    /// local server there), found through /proc/self/fd and /proc/net/tcp{,6}.
    static func clientSockets(toPort port: Int) -> Int {
        let inodes = Set(ProcessResources.openFileTargets().compactMap { target -> String? in
            guard target.hasPrefix("socket:[") else { return nil }
            return String(target.dropFirst(8).dropLast())
        })
        var count = 0
        for table in ["tcp", "tcp6"] {
            // Read to the end: String(contentsOfFile:) stops after the first page of a /proc file.
            guard let handle = FileHandle(forReadingAtPath: "/proc/net/\(table)") else { continue }
            let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
            try? handle.close()
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count > 9, inodes.contains(String(fields[9])) else { continue }
                let remotePort = fields[2].split(separator: ":").last.flatMap { Int($0, radix: 16) }
                if remotePort == port { count += 1 }
            }
        }
        return count
    }

    /// The HostError a throwing call ends with (fails the test when it does not throw one).
    static func hostError(_ body: () async throws -> Void) async -> HostError? {
        do {
            try await body()
            return nil
        } catch let error as HostError {
            return error
        } catch {
            return HostError(.internalError, "not a HostError: \(error)")
        }
    }
}

/// Reads a subscription's events into a recorder from a child task of the test.
func record(_ subscription: ChangefeedSubscription, into recorder: Recorder<ChangefeedEvent>) async {
    for await event in subscription.events {
        recorder.append(event)
    }
}

extension Recorder where Element == ChangefeedEvent {
    var changes: [ChangefeedEvent] {
        all.filter { if case .change = $0 { true } else { false } }
    }

    var ended: Bool {
        all.contains { if case .ended = $0 { true } else { false } }
    }
}
