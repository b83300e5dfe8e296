import GuildNetCore
import GuildNetSettings
import GuildNetStateDirectory
import Logging

extension HostActor {
    /// Applies new host-wide settings to every active cluster (and to clusters registered later).
    /// Returns, per cluster key, the keys whose effective value changed. No cluster is restarted.
    @discardableResult
    public func reloadHostSettings(_ sources: HostSettingsSources) async -> [String: [String]] {
        setHostSettings(sources)
        var changed: [String: [String]] = [:]
        for cluster in activeClusters() {
            let keys = await cluster.settings.replaceHostSources(sources)
            if !keys.isEmpty { changed[cluster.id.key] = keys }
        }
        return changed
    }

    /// Watches the host's settings files and applies each valid change with
    /// ``reloadHostSettings(_:)``; an invalid edit is logged and rejected (the previous settings stay).
    /// The watcher is a child task of ``run()``; it ends with the host.
    /// - Parameter load: re-reads every host source (the same call the daemon made at start).
    public nonisolated func watchSettingsFiles(_ files: [String], load: @escaping @Sendable () throws -> HostSettingsSources) {
        guard !files.isEmpty else { return }
        let logger = configuration.logger
        spawnHostTask {
            do {
                try await FileWatcher(paths: files).run { changed in
                    do {
                        let sources = try load()
                        for warning in sources.warnings {
                            logger.warning("\(warning)", metadata: ["event": "settings_field_ignored"])
                        }
                        let clusters = await self.reloadHostSettings(sources)
                        logger.info(
                            "host settings files changed",
                            metadata: [
                                "event": "host_settings_reloaded", "files": .string(changed.joined(separator: ",")),
                                "clusters_changed": .stringConvertible(clusters.count),
                            ])
                    } catch {
                        let failure = HostError.wrapping(error, as: .configInvalid)
                        logger.warning(
                            "host settings edit rejected; the previous settings stay in effect: \(failure.message)",
                            metadata: ["event": "settings_reload_rejected", "code": .string(failure.code.rawValue)])
                    }
                }
            } catch is CancellationError {
                return
            } catch {
                logger.warning("not watching the host settings files: \(error)", metadata: ["event": "settings_watch_failed"])
            }
        }
    }
}
