import Foundation
import GuildNetCore
import GuildNetKube
import GuildNetSimulators
import Logging
import TestSupport
import Testing

/// Building clients against KubeSim, and reading this process's connections to a sim.
enum KubeTestSupport {
    static let quietLogger: Logger = {
        var logger = Logger(label: "kube-test")
        logger.logLevel = .critical
        return logger
    }()

    /// The resolved cluster config of a kubeconfig KubeSim writes for `user`.
    static func config(_ sim: KubeSim, _ endpoint: KubeSimEndpoint, user: KubeSimUser = .token) throws -> KubeClusterConfig {
        let yaml = sim.kubeconfig(endpoint: endpoint, user: user)
        return try KubeClusterConfig.resolve(try KubeconfigLoader.parse(Data(yaml.utf8), source: "kubesim"), context: nil)
    }

    /// Runs `body` with a client for `config`; the client is shut down whatever happens.
    static func withClient<T: Sendable>(
        _ config: KubeClusterConfig, options: KubeClientOptions = KubeClientOptions(), logger: Logger = quietLogger,
        _ body: (KubeClient) async throws -> T
    ) async throws -> T {
        let client = try KubeClient.make(config: config, options: options, logger: logger)
        do {
            let result = try await body(client)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    /// A sim and a client of it (token user unless told otherwise).
    static func withSimClient<T: Sendable>(
        simOptions: KubeSimOptions = KubeSimOptions(), user: KubeSimUser = .token, options: KubeClientOptions = KubeClientOptions(),
        logger: Logger = quietLogger,
        _ body: @Sendable (KubeSim, KubeSimEndpoint, KubeClient) async throws -> T
    ) async throws -> T {
        try await KubeSim.withRunning(options: simOptions) { sim, endpoint in
            try await withClient(try config(sim, endpoint, user: user), options: options, logger: logger) { client in
                try await body(sim, endpoint, client)
            }
        }
    }

    /// Informer options with millisecond backoff, for tests.
    static var fastInformer: KubeInformerOptions {
        var options = KubeInformerOptions()
        options.backoff = Backoff(initial: .milliseconds(10), multiplier: 2, cap: .milliseconds(200), jitter: 0.5)
        options.minimumWatchDuration = .zero
        return options
    }

    /// Runs `informers` as children of this call (as a cluster's task group would), runs `body`,
    /// then cancels them and waits until every `run()` returned.
    static func withInformers<T: Sendable>(
        _ informers: [KubeInformer], _ body: () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for informer in informers {
                group.addTask { await informer.run() }
            }
            do {
                let result = try await body()
                group.cancelAll()
                try await group.waitForAll()
                return result
            } catch {
                group.cancelAll()
                try? await group.waitForAll()
                throw error
            }
        }
    }

    static func pod(_ name: String, labels: JSONValue = [:]) -> JSONValue {
        ["metadata": ["name": .string(name), "labels": labels], "spec": ["containers": [["name": "c", "image": "pause"]]]]
    }

    static func name(_ object: JSONValue) -> String { object["metadata"]?["name"]?.stringValue ?? "" }
    static func rv(_ object: JSONValue) -> String { object["metadata"]?["resourceVersion"]?.stringValue ?? "" }

    /// `namespace/name` → resourceVersion of the server's objects (cluster-scoped: `name`).
    static func serverState(_ sim: KubeSim, _ resource: KubeResource, namespace: String? = nil) async throws -> [String: String] {
        let list = try await sim.list(resource, namespace: namespace)
        var result: [String: String] = [:]
        for item in list["items"]?.arrayValue ?? [] {
            let ns = item["metadata"]?["namespace"]?.stringValue ?? ""
            result[ns.isEmpty ? name(item) : "\(ns)/\(name(item))"] = rv(item)
        }
        return result
    }

    /// TCP connections of this process with `port` at either end (both sides of an in-process sim).
    static func tcpConnections(port: Int) -> Int {
        ProcessResources.tcpConnections(withPort: port)
    }
}

/// Collects a subscriber's events in a task of the test.
actor EventLog {
    private(set) var events: [InformerEvent] = []

    func append(_ event: InformerEvent) { events.append(event) }

    var objectEvents: [(type: String, name: String, rv: String)] {
        events.compactMap { event in
            guard let type = event.watchType, let object = event.object else { return nil }
            return (type, KubeTestSupport.name(object), KubeTestSupport.rv(object))
        }
    }

    func contains(_ type: String, name: String) -> Bool {
        objectEvents.contains { $0.type == type && $0.name == name }
    }

    var last: InformerEvent? { events.last }
}
