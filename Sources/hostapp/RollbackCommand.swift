import ArgumentParser
import Foundation
import GuildNetCore
import GuildNetMigration

/// `hostapp rollback-db`: restores the legacy DB from a migration backup (docs/migration-rollback.md).
struct RollbackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback-db",
        abstract: "Restore <state-dir>/guildnet.sqlite from a migrate-db backup, atomically."
    )

    @Option(name: .long, help: "State directory holding guildnet.sqlite.")
    var stateDir: String

    @Option(name: .long, help: "Backup directory written by migrate-db --commit (holds manifest.json).")
    var backup: String

    @Option(name: .long, help: "Operator name for the audit log (default $USER).")
    var `operator`: String?

    func run() throws {
        var options = Migration.RollbackOptions(stateDirectory: stateDir, backupDirectory: backup)
        options.operatorName = self.operator
        options.commandLine = CommandLine.arguments
        do {
            let report = try Migration.rollback(options)
            print(report.render().replacingOccurrences(of: "--state-dir <dir>", with: "--state-dir \(stateDir)"))
        } catch {
            let hostError = HostError.wrapping(error)
            FileHandle.standardError.write(Data("hostapp rollback-db: \(hostError.code.rawValue): \(hostError.message)\n".utf8))
            throw ExitCode(hostError.code == .stateDirLocked ? 3 : 1)
        }
    }
}
