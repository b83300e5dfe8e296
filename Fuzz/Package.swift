// swift-tools-version: 6.2
import PackageDescription

/// libFuzzer targets for every parser that faces untrusted input (issue 18). A separate package, so
/// the main `swift build --build-tests` never builds them; `scripts/fuzz.sh` builds it with
/// `--sanitize=fuzzer --sanitize=address` in its own scratch path (.build-fuzz) and runs each target.
let settings: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "GuildNetFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "GuildNetHost", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
    ],
    targets: [
        .executableTarget(
            name: "FuzzControlLine",
            dependencies: [
                .product(name: "GuildNetControl", package: "GuildNetHost"),
                .product(name: "GuildNetCore", package: "GuildNetHost"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: settings
        ),
        .executableTarget(
            name: "FuzzJSON",
            dependencies: [.product(name: "GuildNetCore", package: "GuildNetHost")],
            swiftSettings: settings
        ),
        .executableTarget(
            name: "FuzzKubeconfig",
            dependencies: [
                .product(name: "GuildNetKube", package: "GuildNetHost"),
                .product(name: "GuildNetCore", package: "GuildNetHost"),
            ],
            swiftSettings: settings
        ),
        .executableTarget(
            name: "FuzzKubeWatch",
            dependencies: [
                .product(name: "GuildNetKube", package: "GuildNetHost"),
                .product(name: "GuildNetCore", package: "GuildNetHost"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: settings
        ),
        .executableTarget(
            name: "FuzzRethinkWire",
            dependencies: [
                .product(name: "GuildNetRethink", package: "GuildNetHost"),
                .product(name: "GuildNetCore", package: "GuildNetHost"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: settings
        ),
        .executableTarget(
            name: "FuzzLegacyRecord",
            dependencies: [
                .product(name: "GuildNetLegacy", package: "GuildNetHost"),
                .product(name: "GuildNetMigration", package: "GuildNetHost"),
                .product(name: "GuildNetCore", package: "GuildNetHost"),
            ],
            swiftSettings: settings
        ),
    ]
)
