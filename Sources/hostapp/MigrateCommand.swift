import ArgumentParser
import Foundation
import GuildNetCore
import GuildNetMigration

/// `hostapp migrate-db`: moves the legacy host-wide DB into per-cluster DBs (docs/migration-rollback.md).
struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate-db",
        abstract: "Migrate <state-dir>/guildnet.sqlite (legacy host-wide layout) into per-cluster DBs.",
        discussion:
            "Always run --dry-run first. --commit takes the state directory lock, backs the source up and verifies it, then writes each cluster. See docs/migration-rollback.md."
    )

    @Option(name: .long, help: "State directory holding guildnet.sqlite.")
    var stateDir: String

    @Option(name: .long, help: "Migrate only this cluster's records.")
    var cluster: String?

    @Flag(name: .long, help: "Migrate every cluster.")
    var all = false

    @Option(name: .long, help: "Operator CSV collection,key,cluster; wins over the inference rules.")
    var mapping: String?

    @Option(name: .long, help: "Backup directory (default <state-dir>/backups/<timestamp>).")
    var backup: String?

    @Flag(name: .long, help: "Print the plan and write nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Back up, then write the per-cluster data.")
    var commit = false

    @Option(name: .long, help: "Operator name for the audit log (default $USER).")
    var `operator`: String?

    @Flag(name: .long, help: "After a verified commit, delete the migrated rows from the source.")
    var pruneSource = false

    @Option(name: .long, help: "Environment variable holding the Go app's master key (its bytes, zero-padded or cut to 32, are the AES-256-GCM key).")
    var masterKeyEnv: String = "GUILDNET_MASTER_KEY"

    @Option(name: .long, help: "File holding the Go app's master key (wins over --master-key-env; trailing line breaks ignored).")
    var masterKeyFile: String?

    func validate() throws {
        guard (cluster != nil) != all else { throw ValidationError("give exactly one of --cluster ID and --all") }
        guard dryRun != commit else { throw ValidationError("give exactly one of --dry-run and --commit") }
        if pruneSource && !commit { throw ValidationError("--prune-source needs --commit") }
    }

    func run() throws {
        var options = MigrationOptions(stateDirectory: stateDir, cluster: cluster, commit: commit)
        options.mappingFile = mapping
        options.backupDirectory = backup
        options.operatorName = self.operator
        options.pruneSource = pruneSource
        options.masterKeyVariable = masterKeyEnv
        options.masterKeyFile = masterKeyFile
        options.commandLine = CommandLine.arguments
        do {
            let report = try Migration.run(options)
            print(report.render())
        } catch {
            let hostError = HostError.wrapping(error)
            FileHandle.standardError.write(Data("hostapp migrate-db: \(hostError.code.rawValue): \(hostError.message)\n".utf8))
            throw ExitCode(hostError.code == .stateDirLocked ? 3 : 1)
        }
    }
}
