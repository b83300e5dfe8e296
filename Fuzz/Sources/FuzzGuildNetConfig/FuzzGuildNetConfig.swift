import GuildNetCore
import GuildNetSettings

/// libFuzzer target: GuildNet's own files through the readers the daemon uses for
/// `--guildnet-config`, `--env-file` and `hostapp bootstrap`: `GuildNetConfigJSON.parse`
/// (`config.json`), `DotEnvFile.parse` + `GuildNetDotEnv.map` (`.env`) and `JoinBundle.parse`
/// (`guildnet.config`).
///
/// Input: byte 0 picks the reader (0: config.json, 1: .env, 2: guildnet.config), the rest is the file.
/// Contract: a reading or `config_invalid` naming the file; a parsed bundle re-encoded by
/// `JoinBundle.encode` parses again to the same cluster name and kubeconfig.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGuildNetConfig(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let first = bytes.first else { return 0 }
    let file = Array(bytes.dropFirst())
    do throws(HostError) {
        switch first % 3 {
        case 0:
            _ = try GuildNetConfigJSON.parse(file, path: "config.json")
        case 1:
            let parsed = try DotEnvFile.parse(String(decoding: file, as: UTF8.self), path: ".env", environment: ["HOME": "/root"])
            _ = try GuildNetDotEnv.map(parsed, path: ".env")
        default:
            let bundle = try JoinBundle.parse(file, path: "guildnet.config")
            guard let name = bundle.clusterName else { return 0 }
            let encoded = JoinBundle.encode(clusterName: name, kubeconfig: bundle.kubeconfig, settings: bundle.settings, createdAt: "2026-12-03T00:00:00Z")
            do throws(HostError) {
                let again = try JoinBundle.parse(encoded, path: "guildnet.config (re-encoded)")
                precondition(again.clusterName == name && again.kubeconfig == bundle.kubeconfig, "bundle round trip changed the cluster")
            } catch {
                preconditionFailure("a re-encoded bundle does not parse: \(error)")
            }
        }
    } catch {
        precondition(error.code == .configInvalid, "reader failed with \(error.code.rawValue), not config_invalid")
        precondition(
            error.message.contains("config.json") || error.message.contains(".env") || error.message.contains("guildnet.config"), "error does not name the file"
        )
    }
    return 0
}
