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

    /// A logger whose lines are captured, not printed (tests that expect failures log errors).
    static var logger: Logger { LogCapture().logger(label: "test.rethink") }

    /// The connect deadline (TCP, handshake and SCRAM) of connections that are meant to succeed:
    /// generous, because the whole suite runs in parallel on 2 cores in a debug build. Tests of
    /// the deadline itself set their own.
    static let connectTimeout: Duration = .seconds(30)

    static func address(_ endpoint: RethinkSimEndpoint) -> RethinkAddress {
        RethinkAddress(host: endpoint.host, port: endpoint.port)
    }

    static func connect(
        _ endpoint: RethinkSimEndpoint, user: String = "admin", password: String = "",
        options: RethinkConnection.Options = RethinkConnection.Options(connectTimeout: RethinkHarness.connectTimeout)
    ) async throws -> RethinkConnection {
        try await RethinkConnection.connect(to: address(endpoint), user: user, password: password, options: options, logger: logger)
    }

    static func configuration(
        _ endpoint: RethinkSimEndpoint?, password: String = "", maxConnections: Int = 4, maxFeeds: Int = 32,
        feedBufferLimit: Int = 1024, overflow: ChangefeedOverflowPolicy = .dropOldest, queryTimeout: Duration = .seconds(10),
        feedEventsPerSecond: Int = 0, feedBurst: Int = 1_000
    ) -> RethinkConnectorConfiguration {
        RethinkConnectorConfiguration(
            address: endpoint.map(address), user: "admin", password: password, maxConnections: maxConnections,
            connectTimeout: connectTimeout, queryTimeout: queryTimeout, maxFeeds: maxFeeds, feedBufferLimit: feedBufferLimit,
            feedOverflow: overflow, feedEventsPerSecond: feedEventsPerSecond, feedBurst: feedBurst,
            reconnectBackoff: Backoff(initial: .milliseconds(10), cap: .milliseconds(200)))
    }

    /// Runs a connector with its `run()` as a child task, as a cluster supervisor does; shuts it down after `body`.
    static func withConnector<T: Sendable>(
        _ configuration: RethinkConnectorConfiguration,
        resolve: (@Sendable () async throws -> RethinkAddress)? = nil,
        logger: Logger = RethinkHarness.logger,
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

    /// A local TCP port nobody listens on: bound but not listening for the reservation's lifetime,
    /// so no parallel test can take it and every connect is refused.
    static func closedPort() throws -> ReservedPort {
        try ReservedPort()
    }

    /// This process's TCP client sockets connected to `port` (see ``ProcessResources/tcpConnections(toPort:pid:)``).
    static func clientSockets(toPort port: Int) -> Int {
        ProcessResources.tcpConnections(toPort: port)
    }

    /// Open connections between this process's clients and the in-process server on `port`
    /// (see ``ProcessResources/inProcessConnections(toServerPort:pid:)``): exact while tests run in parallel.
    static func connectionsToSim(onPort port: Int) -> Int {
        ProcessResources.inProcessConnections(toServerPort: port)
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

/// A TCP socket bound to 127.0.0.1 on an ephemeral port without listening; closed on deinit.
final class ReservedPort: Sendable {
    let port: Int
    private let descriptor: Int32

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw HostError(.io, "socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(descriptor, generic, length) == 0 && getsockname(descriptor, generic, &length) == 0
            }
        }
        guard bound else {
            close(descriptor)
            throw HostError(.io, "bind() failed")
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit {
        close(descriptor)
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
