import ArgumentParser

/// `hostapp`: one daemon managing many Kubernetes clusters, each fully isolated.
@main
struct HostApp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hostapp",
        abstract: "GuildNet Host: manage many Kubernetes clusters from one daemon, each isolated.",
        version: "0.1.0",
        subcommands: [ServeCommand.self, CtlCommand.self, BootstrapCommand.self, MigrateCommand.self, RollbackCommand.self, SimCommand.self, DemoCommand.self]
    )
}
