import GuildNetCore
import GuildNetRethink
import GuildNetSimulators
import TestSupport
import Testing

/// The per-cluster connector: laziness, warm-up, pool, replacement, shutdown, status, secrets.
@Suite struct RethinkConnectorTests {
    @Test func lazyUntilFirstUseThenWarmupConnects() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            try await RethinkHarness.withConnector(RethinkHarness.configuration(endpoint)) { connector in
                let before = await connector.status()
                #expect(before.openConnections == 0)
                #expect(before.queriesRun == 0)
                #expect(before.address == "\(endpoint.host):\(endpoint.port)")
                #expect(await sim.openConnections == 0)

                let info = try await connector.warmup()
                #expect(info["name"]?.stringValue != nil)
                let after = await connector.status()
                #expect(after.openConnections == 1)
                #expect(after.connectionsOpened == 1)
                #expect(after.queriesRun == 1)
                #expect(after.lastError == nil)
                #expect(after.json["open_connections"] == 1)
            }
        }
    }

    @Test func poolGrowsUnderLoadUpToItsMaximum() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            try await RethinkHarness.withConnector(RethinkHarness.configuration(endpoint, maxConnections: 3)) { connector in
                _ = try await connector.warmup()
                await sim.stallReplies()
                try await withThrowingTaskGroup(of: JSONValue.self) { group in
                    for _ in 0..<12 { group.addTask { try await connector.run(.dbList()) } }
                    try await eventually("the pool is full") { await connector.status().openConnections == 3 }
                    await sim.releaseReplies()
                    for try await result in group { #expect(result.arrayValue?.contains("test") == true) }
                }
                let status = await connector.status()
                #expect(status.openConnections == 3)
                #expect(status.queriesRun == 13)
                #expect(status.failures == 0)
                #expect(RethinkHarness.connectionsToSim(onPort: endpoint.port) == 3)
                #expect(await sim.openConnections == 3)
            }
        }
    }

    @Test func brokenConnectionsAreReplaced() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            try await RethinkHarness.withConnector(RethinkHarness.configuration(endpoint)) { connector in
                _ = try await connector.warmup()
                #expect(await sim.dropConnections() == 1)
                try await eventually("the client saw the close") { RethinkHarness.clientSockets(toPort: endpoint.port) == 0 }
                #expect(try await connector.run(.dbList()).arrayValue != nil)
                let status = await connector.status()
                #expect(status.openConnections == 1)
                #expect(status.connectionsOpened == 2)
            }
        }
    }

    @Test func queryLostMidFlightIsTransient() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            try await RethinkHarness.withConnector(RethinkHarness.configuration(endpoint)) { connector in
                _ = try await connector.warmup()
                await sim.stallReplies()
                try await withThrowingTaskGroup(of: HostError?.self) { group in
                    group.addTask { await RethinkHarness.hostError { _ = try await connector.run(.dbList()) } }
                    try await eventually("the query is pending") { await connector.status().pendingQueries == 1 }
                    _ = await sim.dropConnections()
                    let error = try await group.next() ?? nil
                    #expect(error?.code == .rethinkConnectionLost)
                    #expect(error?.transient == true)
                }
                await sim.releaseReplies()
                let status = await connector.status()
                #expect(status.failures == 1)
                #expect(status.lastError?.code == .rethinkConnectionLost)
            }
        }
    }

    @Test func shutdownClosesEveryConnection() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            // Parallel tests open and close descriptors too, so the baseline is this test's own: the
            // descriptors of sockets connected to this simulator's port.
            #expect(RethinkHarness.clientSockets(toPort: endpoint.port) == 0)
            let connector = RethinkConnector(configuration: RethinkHarness.configuration(endpoint, maxConnections: 4), logger: RethinkHarness.logger)
            await sim.stallReplies()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 { group.addTask { _ = try? await connector.run(.dbList()) } }
                // Each connection does a SCRAM handshake (PBKDF2), slow in a debug build on a loaded machine.
                try await eventually("4 connections", timeout: .seconds(60)) { RethinkHarness.connectionsToSim(onPort: endpoint.port) == 4 }
                await connector.shutdown()
                try await group.waitForAll()
            }
            await sim.releaseReplies()
            #expect(RethinkHarness.clientSockets(toPort: endpoint.port) == 0)
            try await eventually("the sim saw every close") { await sim.openConnections == 0 }
            let later = await RethinkHarness.hostError { _ = try await connector.run(.dbList()) }
            #expect(later?.code == .rethinkConnectionLost)
            #expect(later?.transient == false)
            #expect(await connector.status().shutDown)
        }
    }

    @Test func unreachableAndUnconfigured() async throws {
        let reserved = try RethinkHarness.closedPort()
        let port = reserved.port
        defer { withExtendedLifetime(reserved) {} }
        let unreachable = RethinkConnector(
            configuration: RethinkHarness.configuration(RethinkSimEndpoint(host: "127.0.0.1", port: port)), logger: RethinkHarness.logger)
        let error = await RethinkHarness.hostError { _ = try await unreachable.warmup() }
        #expect(error?.code == .rethinkUnreachable)
        #expect(error?.transient == true)
        let status = await unreachable.status()
        #expect(status.failures == 1)
        #expect(status.lastError?.code == .rethinkUnreachable)
        #expect(status.json["last_error"]?["code"] == "rethink_unreachable")
        await unreachable.shutdown()

        let unconfigured = RethinkConnector(configuration: RethinkConnectorConfiguration(), logger: RethinkHarness.logger)
        #expect(await RethinkHarness.hostError { _ = try await unconfigured.run(.dbList()) }?.code == .rethinkNotConfigured)
        await unconfigured.shutdown()
    }

    @Test func concurrentFirstCallersShareOneConnectAttempt() async throws {
        let reserved = try RethinkHarness.closedPort()
        let port = reserved.port
        defer { withExtendedLifetime(reserved) {} }
        let attempts = LockedValue(0)
        let connector = RethinkConnector(
            configuration: RethinkHarness.configuration(nil),
            resolveAddress: {
                attempts.withLock { $0 += 1 }
                return RethinkAddress(host: "127.0.0.1", port: port)
            },
            logger: RethinkHarness.logger)
        let errors = Recorder<HostError>()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<10 {
                group.addTask {
                    if let error = await RethinkHarness.hostError({ _ = try await connector.run(.dbList()) }) { errors.append(error) }
                }
            }
        }
        #expect(errors.all.count == 10)
        #expect(errors.all.allSatisfy { $0.code == .rethinkUnreachable })
        #expect(attempts.withLock { $0 } < 10)
        await connector.shutdown()
    }

    @Test func hungResolverCountsAsUnreachable() async throws {
        var configuration = RethinkHarness.configuration(nil)
        configuration.connectTimeout = .milliseconds(200)
        let connector = RethinkConnector(
            configuration: configuration,
            resolveAddress: {
                try await waitForCancellation()
                return RethinkAddress(host: "127.0.0.1")
            },
            logger: RethinkHarness.logger)
        let error = await RethinkHarness.hostError { _ = try await connector.warmup() }
        #expect(error?.code == .rethinkUnreachable)
        #expect(error?.transient == true)
        await connector.shutdown()
    }

    @Test func resolverPicksTheAddressOfEachNewConnection() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { first, firstEndpoint in
            try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { second, secondEndpoint in
                let target = LockedValue(RethinkHarness.address(firstEndpoint))
                try await RethinkHarness.withConnector(
                    RethinkHarness.configuration(nil), resolve: { target.withLock { $0 } }
                ) { connector in
                    _ = try await connector.warmup()
                    #expect(await first.openConnections == 1)
                    target.withLock { $0 = RethinkHarness.address(secondEndpoint) }
                    _ = await first.dropConnections()
                    try await eventually("closed") { RethinkHarness.clientSockets(toPort: firstEndpoint.port) == 0 }
                    _ = try await connector.warmup()
                    #expect(await second.openConnections == 1)
                    #expect(await connector.status().address == RethinkHarness.address(secondEndpoint).description)
                }
            }
        }
    }

    @Test func credentialsNeverReachLogsStatusOrErrors() async throws {
        let capture = LogCapture()
        let password = "pw-\(UInt64.random(in: 1_000_000...9_999_999))-secret"
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions(users: ["admin": password])) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            try await RethinkHarness.withConnector(
                RethinkHarness.configuration(endpoint, password: password), logger: capture.logger(label: "rethink")
            ) { connector in
                _ = try await connector.warmup()
                _ = try await connector.run(ReQL.db("test").table("t").insert(["id": 1]))
                _ = try? await connector.run(ReQL.db("nope").table("t"))
                let feed = try await connector.subscribe(ReQL.db("test").table("t").changes())
                _ = await sim.dropConnections()
                try await eventually("resubscribed") { await connector.status().feeds.resumes == 1 }
                await connector.unsubscribe(feed.id)
                let status = await connector.status()
                #expect(!status.json.jsonString.contains(password))
                #expect(!"\(connector.configuration)".contains(password))
            }
            // A wrong password, logged as a failure.
            let wrong = RethinkConnector(
                configuration: RethinkHarness.configuration(endpoint, password: password + "-wrong"),
                logger: capture.logger(label: "rethink"))
            let error = await RethinkHarness.hostError { _ = try await wrong.warmup() }
            #expect(error?.code == .rethinkAuthFailed)
            #expect(error?.message.contains(password) == false)
            await wrong.shutdown()
        }
        #expect(capture.all.count > 3)
        #expect(capture.contains("rethink connection opened"))
        #expect(capture.contains("rethink_auth_failed"))
        #expect(!capture.contains(password))
    }
}
