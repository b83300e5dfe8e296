import Dispatch
import Foundation
import GuildNetCore

/// A credential returned by an exec plugin (`client.authentication.k8s.io` ExecCredential).
public struct ExecCredential: Sendable, Equatable {
    public enum Secret: Sendable, Equatable {
        case token(String)
        case clientCertificate(certificatePEM: [UInt8], keyPEM: [UInt8])
    }

    public var secret: Secret
    /// When the plugin said it expires; `nil` = until the server refuses it.
    public var expiration: Date?
}

/// Runs one cluster's exec credential plugin and caches its credential until it expires (or
/// until ``invalidate()``, called after a 401). One provider per cluster: never shared.
public actor ExecCredentialProvider {
    private let config: KubeconfigDocument.ExecConfig
    private let server: String
    private let caPEM: [UInt8]?
    private let timeout: Duration
    private var cached: ExecCredential?
    /// How many times the plugin ran (tests check the cache).
    public private(set) var runs = 0

    public init(config: KubeconfigDocument.ExecConfig, server: String, caPEM: [UInt8]?, timeout: Duration = .seconds(30)) {
        self.config = config
        self.server = server
        self.caPEM = caPEM
        self.timeout = timeout
    }

    /// The cached credential if still valid (with 10 s of margin), else a fresh one from the plugin.
    public func credential(now: Date = Date()) async throws -> ExecCredential {
        if let cached, cached.expiration.map({ $0.timeIntervalSince(now) > 10 }) ?? true {
            return cached
        }
        let fresh = try await run()
        cached = fresh
        return fresh
    }

    /// Drops the cached credential (the server answered 401).
    public func invalidate() { cached = nil }

    private func run() async throws -> ExecCredential {
        runs += 1
        guard let command = config.command else { throw HostError(.kubeconfigInvalid, "exec credential plugin has no command") }
        let apiVersion = config.apiVersion ?? "client.authentication.k8s.io/v1"
        var info: [String: JSONValue] = ["kind": "ExecCredential", "apiVersion": .string(apiVersion)]
        var spec: [String: JSONValue] = ["interactive": false]
        if config.provideClusterInfo == true {
            var cluster: [String: JSONValue] = ["server": .string(server), "config": .null]
            if let caPEM { cluster["certificate-authority-data"] = .string(Data(caPEM).base64EncodedString()) }
            spec["cluster"] = .object(cluster)
        }
        info["spec"] = .object(spec)
        var environment = ProcessInfo.processInfo.environment
        for variable in config.env ?? [] { environment[variable.name] = variable.value }
        environment["KUBERNETES_EXEC_INFO"] = JSONValue.object(info).jsonString
        let outcome = try await Self.execute(command: command, arguments: config.args ?? [], environment: environment, timeout: timeout)
        guard outcome.status == 0 else {
            let hint = config.installHint.map { "; \($0)" } ?? ""
            throw HostError(.credentialPluginFailed, "exec credential plugin \(command) exited with status \(outcome.status)\(hint)")
        }
        return try Self.parse(outcome.stdout, expectedAPIVersion: apiVersion, command: command)
    }

    /// Parses the plugin's stdout; errors never quote it (it holds the secret).
    static func parse(_ stdout: [UInt8], expectedAPIVersion: String, command: String) throws -> ExecCredential {
        guard case .object(let document)? = try? JSONParser.parse(stdout), document["kind"] == "ExecCredential" else {
            throw HostError(.credentialPluginFailed, "exec credential plugin \(command) did not print an ExecCredential")
        }
        guard document["apiVersion"]?.stringValue == expectedAPIVersion else {
            throw HostError(.credentialPluginFailed, "exec credential plugin \(command) answered another apiVersion than \(expectedAPIVersion)")
        }
        guard case .object(let status)? = document["status"] else {
            throw HostError(.credentialPluginFailed, "exec credential plugin \(command) printed no status")
        }
        var expiration: Date?
        if let stamp = status["expirationTimestamp"]?.stringValue {
            guard let date = ISO8601DateFormatter().date(from: stamp) else {
                throw HostError(.credentialPluginFailed, "exec credential plugin \(command) printed an invalid expirationTimestamp")
            }
            expiration = date
        }
        if let token = status["token"]?.stringValue, !token.isEmpty {
            return ExecCredential(secret: .token(token), expiration: expiration)
        }
        if let certificate = status["clientCertificateData"]?.stringValue, let key = status["clientKeyData"]?.stringValue {
            return ExecCredential(
                secret: .clientCertificate(certificatePEM: Array(certificate.utf8), keyPEM: Array(key.utf8)), expiration: expiration)
        }
        throw HostError(.credentialPluginFailed, "exec credential plugin \(command) returned neither a token nor a client certificate")
    }

    struct Outcome: Sendable {
        var status: Int32
        var stdout: [UInt8]
    }

    /// Runs the plugin on a Dispatch thread (it blocks), killing it after `timeout`.
    static func execute(command: String, arguments: [String], environment: [String: String], timeout: Duration) async throws -> Outcome {
        let process = Process()
        if command.contains("/") {
            process.executableURL = URL(fileURLWithPath: command)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [command] + arguments
        }
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw HostError(.credentialPluginFailed, "exec credential plugin \(command) cannot be started")
        }
        let deadline = DispatchTime.now() + .nanoseconds(Int(timeout.seconds * 1e9))
        return await withCheckedContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async {
                let timer = DispatchWorkItem { if process.isRunning { process.terminate() } }
                DispatchQueue.global().asyncAfter(deadline: deadline, execute: timer)
                let data = output.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                timer.cancel()
                continuation.resume(returning: Outcome(status: process.terminationStatus, stdout: Array(data)))
            }
        }
    }
}
