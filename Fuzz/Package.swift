// swift-tools-version: 6.2
import PackageDescription

/// libFuzzer targets for every parser that faces untrusted input (issue 18). A separate package, so
/// the main `swift build --build-tests` never builds them; `scripts/fuzz.sh` builds it with
/// `--sanitize=fuzzer --sanitize=address` in its own scratch path (.build-fuzz) and runs each target.
let settings: [SwiftSetting] = [.swiftLanguageMode(.v6)]

/// One fuzz target (Sources/<name>/) linking the named products of the main package, and NIOCore when `nio`.
func fuzzTarget(_ name: String, _ products: [String], nio: Bool = false) -> Target {
    var dependencies: [Target.Dependency] = products.map { .product(name: $0, package: "GuildNetHost") }
    if nio { dependencies.append(.product(name: "NIOCore", package: "swift-nio")) }
    return .executableTarget(name: name, dependencies: dependencies, swiftSettings: settings)
}

let package = Package(
    name: "GuildNetFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "GuildNetHost", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
    ],
    targets: [
        fuzzTarget("FuzzControlLine", ["GuildNetControl", "GuildNetCore"], nio: true),
        fuzzTarget("FuzzJSON", ["GuildNetCore"]),
        fuzzTarget("FuzzKubeconfig", ["GuildNetKube", "GuildNetCore"]),
        fuzzTarget("FuzzKubeWatch", ["GuildNetKube", "GuildNetCore"], nio: true),
        fuzzTarget("FuzzRethinkWire", ["GuildNetRethink", "GuildNetCore"], nio: true),
        fuzzTarget("FuzzLegacyRecord", ["GuildNetLegacy", "GuildNetMigration", "GuildNetCore"]),
        fuzzTarget("FuzzGuildNetConfig", ["GuildNetSettings", "GuildNetCore"]),
    ]
)
