// swift-tools-version: 6.2
import PackageDescription

/// Swift 6 language mode everywhere; warnings are treated as a CI failure by scripts/test.sh.
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
]

let package = Package(
    name: "GuildNetHost",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "hostapp", targets: ["hostapp"]),
        .executable(name: "hostapp-bench", targets: ["RuntimeBench"]),
        .executable(name: "hostapp-migration-bench", targets: ["MigrationBench"]),
        .executable(name: "hostapp-kube-bench", targets: ["KubeBench"]),
        .executable(name: "hostapp-rethink-bench", targets: ["RethinkBench"]),
        .executable(name: "hostapp-forward-bench", targets: ["ForwardBench"]),
        .executable(name: "hostapp-route-bench", targets: ["RouteBench"]),
        .executable(name: "hostapp-stress", targets: ["StressRun"]),
        .library(name: "GuildNetRuntime", targets: ["GuildNetRuntime"]),
        .library(name: "GuildNetControl", targets: ["GuildNetControl"]),
        // For the fuzz package in Fuzz/ (issue 18), which links the parsers it fuzzes.
        .library(name: "GuildNetCore", targets: ["GuildNetCore"]),
        .library(name: "GuildNetKube", targets: ["GuildNetKube"]),
        .library(name: "GuildNetRethink", targets: ["GuildNetRethink"]),
        .library(name: "GuildNetLegacy", targets: ["GuildNetLegacy"]),
        .library(name: "GuildNetMigration", targets: ["GuildNetMigration"]),
        .library(name: "GuildNetSettings", targets: ["GuildNetSettings"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", exact: "4.5.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
        .package(url: "https://github.com/apple/swift-certificates", exact: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", exact: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio-ssl", exact: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client", exact: "1.37.0"),
        // Already resolved through Hummingbird; named for NIOHTTPTypes(HTTP1) in KubeSim's upgradable channel.
        .package(url: "https://github.com/apple/swift-nio-extras", exact: "1.35.2"),
    ],
    targets: [
        // Core vocabulary shared by every subsystem: ClusterID, the child-service protocol,
        // typed errors, lifecycle events, JSON values, backoff, logging.
        .target(
            name: "GuildNetCore",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The state directory's layout and files: paths, the lock, the identity record, the atomic
        // file writer and the settings.json codec. Shared by the daemon, ctl and the migration tools.
        .target(
            name: "GuildNetStateDirectory",
            dependencies: ["GuildNetCore"],
            swiftSettings: swiftSettings
        ),
        // Where a cluster's data lives: the ClusterStorage seam and its per-cluster implementation
        // (the legacy implementation is in GuildNetLegacy); chosen once by the daemon.
        .target(
            name: "GuildNetStorage",
            dependencies: [
                "GuildNetCore", "GuildNetStateDirectory", "GuildNetStore", "GuildNetSettings",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Per-cluster SQLite store (GRDB) and the host-wide open-handle budget (LRU + idle TTL).
        .target(
            name: "GuildNetStore",
            dependencies: ["GuildNetCore", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // The legacy host-wide layout of the Go GuildNet app and its mapping to clusters.
        .target(
            name: "GuildNetLegacy",
            dependencies: [
                "GuildNetCore", "GuildNetStateDirectory", "GuildNetStore", "GuildNetSettings", "GuildNetStorage",
                .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // Kubernetes per cluster: kubeconfig loading and resolution, the API client, informers.
        .target(
            name: "GuildNetKube",
            dependencies: [
                "GuildNetCore",
                .product(name: "Yams", package: "Yams"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOSOCKS", package: "swift-nio-extras"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // RethinkDB per cluster: V1_0 wire client with SCRAM-SHA-256, ReQL builder, connector pool, changefeeds.
        .target(
            name: "GuildNetRethink",
            dependencies: [
                "GuildNetCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Layered settings: CLI/env > cluster settings.json > host config > defaults.
        .target(
            name: "GuildNetSettings",
            dependencies: ["GuildNetCore", "GuildNetStateDirectory", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // Per-cluster metric series (label cluster_id) and the loopback /metrics listener.
        .target(
            name: "GuildNetMetrics",
            dependencies: [
                "GuildNetCore",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The supervision tree: HostActor (root) and ClusterActor (one per cluster) with their children.
        .target(
            name: "GuildNetRuntime",
            dependencies: [
                "GuildNetCore", "GuildNetStateDirectory", "GuildNetStore", "GuildNetStorage", "GuildNetSettings",
                "GuildNetMetrics", "GuildNetKube", "GuildNetRethink", .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // JSON-lines control protocol: codec, op dispatch, Unix-socket and stdin transports, client.
        .target(
            name: "GuildNetControl",
            dependencies: [
                "GuildNetCore", "GuildNetRuntime", "GuildNetSettings", "GuildNetStore", "GuildNetKube", "GuildNetRethink",
                "GuildNetStateDirectory",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                // The host proxy relays requests over each cluster's pooled client (AsyncHTTPClient).
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                // The host proxy's TLS (kubectl sends bearer tokens only over TLS) and its certificate.
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"), .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // Composition of the daemon's services under ServiceLifecycle (signals, graceful shutdown).
        .target(
            name: "GuildNetDaemon",
            dependencies: [
                "GuildNetCore", "GuildNetRuntime", "GuildNetControl", "GuildNetMetrics", "GuildNetSettings", "GuildNetLegacy",
                "GuildNetStateDirectory", "GuildNetStorage", "GuildNetStore", "GuildNetKube",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "hostapp",
            dependencies: [
                "GuildNetDaemon", "GuildNetControl", "GuildNetCore", "GuildNetMetrics", "GuildNetMigration", "GuildNetSimulators",
                "GuildNetStateDirectory", "GuildNetRuntime", "GuildNetStore", "GuildNetSettings",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                // `hostapp demo` sends traffic through its port-forwards.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Migration of the legacy host-wide DB into per-cluster DBs: plan, backup, commit, rollback, audit.
        .target(
            name: "GuildNetMigration",
            dependencies: [
                "GuildNetCore", "GuildNetLegacy", "GuildNetStore", "GuildNetSettings", "GuildNetStateDirectory", "GuildNetKube",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The system zlib (SPDY/3 header blocks in KubeSim's port-forward endpoint).
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // Simulated servers (KubeSim) for tests, the stress tool and `hostapp sim`; never imported by production modules.
        .target(
            name: "GuildNetSimulators",
            dependencies: [
                "GuildNetCore", "GuildNetRethink", "GuildNetKube", "CZlib",
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "MigrationBench",
            dependencies: ["GuildNetMigration", "GuildNetCore"],
            path: "StressTests/MigrationBench",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BenchSupport",
            dependencies: ["GuildNetCore", "GuildNetControl"],
            path: "StressTests/BenchSupport",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "RethinkBench",
            dependencies: [
                "BenchSupport", "GuildNetControl", "GuildNetRethink", "GuildNetSimulators", "GuildNetCore",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "StressTests/RethinkBench",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "KubeBench",
            dependencies: [
                "BenchSupport", "GuildNetKube", "GuildNetSimulators", "GuildNetCore", .product(name: "Logging", package: "swift-log"),
            ],
            path: "StressTests/KubeBench",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ForwardBench",
            dependencies: [
                "BenchSupport", "GuildNetControl", "GuildNetSimulators", "GuildNetCore",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "StressTests/ForwardBench",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "RouteBench",
            dependencies: [
                "BenchSupport", "GuildNetControl", "GuildNetKube", "GuildNetSimulators", "GuildNetCore",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "StressTests/RouteBench",
            swiftSettings: swiftSettings
        ),
        // `hostapp-stress` (scripts/stress-run.sh): drives a real `hostapp serve` with its own
        // simulators under churn, load and faults; asserts no leaks and no lost events.
        .executableTarget(
            name: "StressRun",
            dependencies: [
                "BenchSupport", "GuildNetControl", "GuildNetSimulators", "GuildNetCore", "GuildNetRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "StressTests/StressRun",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "RuntimeBench",
            dependencies: ["BenchSupport", "GuildNetControl", "GuildNetCore"],
            path: "StressTests/RuntimeBench",
            swiftSettings: swiftSettings
        ),

        // Tests
        .target(
            name: "TestSupport",
            dependencies: [
                "GuildNetCore", "GuildNetRuntime", .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GuildNetCoreTests",
            dependencies: [
                "GuildNetCore", "TestSupport", .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GuildNetStoreTests",
            dependencies: ["GuildNetStore", "GuildNetCore", "TestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GuildNetKubeTests",
            dependencies: ["GuildNetKube", "GuildNetCore", "GuildNetSimulators", "TestSupport", .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOWebSocket", package: "swift-nio"), .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GuildNetRethinkTests",
            dependencies: ["GuildNetRethink", "GuildNetCore", "GuildNetSimulators", "TestSupport", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"), .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GuildNetLegacyTests",
            dependencies: ["GuildNetLegacy", "GuildNetCore", "GuildNetRuntime", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GuildNetSettingsTests",
            dependencies: ["GuildNetSettings", "GuildNetCore", "TestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GuildNetMetricsTests",
            dependencies: ["GuildNetMetrics", "GuildNetCore", "TestSupport", .product(name: "Prometheus", package: "swift-prometheus"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GuildNetStateDirectoryTests",
            dependencies: ["GuildNetStateDirectory", "GuildNetCore", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GuildNetRuntimeTests",
            dependencies: ["GuildNetRuntime", "GuildNetCore", "GuildNetStorage", "GuildNetStore", "GuildNetSettings", "TestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GuildNetControlTests",
            dependencies: ["GuildNetControl", "GuildNetCore", "GuildNetRuntime", "GuildNetDaemon", "GuildNetSimulators", "TestSupport", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"), .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GuildNetMigrationTests",
            dependencies: ["GuildNetMigration", "TestSupport", "hostapp", "GuildNetRuntime", "GuildNetCore", "GuildNetLegacy", "GuildNetStateDirectory", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GuildNetSimulatorsTests",
            dependencies: [
                "GuildNetSimulators", "GuildNetRethink", "GuildNetCore", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HostappEndToEndTests",
            dependencies: [
                "hostapp", "GuildNetControl", "GuildNetCore", "GuildNetSimulators", "TestSupport", .product(name: "NIOCore", package: "swift-nio"),
                // The host proxy keep-alive test speaks HTTPS itself.
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
