import Logging

/// One stable log event code: the level it is logged at, what it means and, for warnings and
/// errors, what the operator can do (`hint`, added to the log line by ``HostLogHandler``).
public struct LogEventCode: Sendable {
    public let code: String
    public let level: Logger.Level
    public let meaning: String
    public let hint: String?
}

/// The one table of `event` codes the daemon logs (docs/operations.md, "Logs", lists the same table,
/// compared by a test, which also checks that every code in the sources is here). JSON lines logged
/// without an event carry `event=log`.
public enum LogEventCatalog {
    /// The code of lines logged without an `event` (free-form diagnostics).
    public static let unclassified = "log"

    public static let all: [LogEventCode] = [
        // Host
        .init(code: "host_start", level: .info, meaning: "the host runtime started", hint: nil),
        .init(code: "host_ready", level: .info, meaning: "the host and every listener are up (socket, metrics_port, proxy_port)", hint: nil),
        .init(code: "host_stop", level: .info, meaning: "shutdown began; every cluster is being torn down", hint: nil),
        .init(
            code: "host_stop_timeout", level: .error, meaning: "some clusters did not stop within --shutdown-timeout",
            hint:
                "look for the clusters still stopping in the lines before; a hung API server or DB lock is the usual cause, raise --shutdown-timeout if teardown is legitimately slow"
        ),
        .init(code: "host_stopped", level: .info, meaning: "every cluster stopped", hint: nil),
        .init(
            code: "memory_trimmed", level: .info,
            meaning: "after unregistrations, freed heap pages were given back to the OS (RSS before/after, duration)", hint: nil),
        .init(code: "daemon_stopped", level: .info, meaning: "the process is about to exit 0", hint: nil),
        .init(
            code: "daemon_failed", level: .critical, meaning: "hostapp serve could not start or failed",
            hint: "read the code and message: config_invalid names the file and field to fix, state_dir_locked means another daemon uses the state directory"),
        .init(code: "legacy_layout", level: .notice, meaning: "serving every cluster from the legacy host-wide DB", hint: nil),
        .init(code: "proxy_listening", level: .info, meaning: "the host proxy listens", hint: nil),
        .init(
            code: "op_failed", level: .error, meaning: "a control op failed with an internal error",
            hint: "an internal error is a bug: keep the line and the request, and report it; the daemon keeps serving"),
        .init(
            code: "audit_failed", level: .error, meaning: "an admin operation could not be written to the audit log",
            hint: "check that <state-dir>/audit is writable by the daemon's user and the disk is not full"),
        // Cluster lifecycle (LifecycleEvent)
        .init(code: "create", level: .info, meaning: "a cluster instance was created (cluster.register)", hint: nil),
        .init(code: "start", level: .info, meaning: "the cluster's children are starting", hint: nil),
        .init(code: "ready", level: .info, meaning: "every child of the cluster runs", hint: nil),
        .init(
            code: "degraded", level: .info, meaning: "a child of the cluster failed and is restarting or gave up",
            hint: "cluster.status shows which child and its last_error; the child_failed line before says why"),
        .init(code: "stop", level: .info, meaning: "the cluster's teardown began", hint: nil),
        .init(code: "destroy", level: .info, meaning: "the cluster's teardown finished: children stopped, DB closed, series removed", hint: nil),
        .init(
            code: "child_failed", level: .error, meaning: "a child of the cluster failed (it is restarted with backoff)",
            hint:
                "read code and child: store → check <state-dir>/clusters/<id>/local.db (permissions, disk, another process holding it); kube → the kubeconfig and API server; rethink → rethinkdb.* settings"
        ),
        .init(code: "child_restarted", level: .info, meaning: "a failed child was started again", hint: nil),
        .init(
            code: "child_gave_up", level: .error, meaning: "a child failed more than its restart budget (10 in 5 min) and stays failed",
            hint: "fix the cause named by the child_failed lines, then cluster.unregister and cluster.register the cluster to start it again"),
        .init(
            code: "cluster_prepare_failed", level: .error, meaning: "the cluster's directory or identity could not be prepared; it was not started",
            hint: "check <state-dir>/clusters/<id> (permissions, disk space, a cluster.json naming another cluster), then register again"),
        .init(code: "cluster_bootstrap", level: .notice, meaning: "a cluster was registered from a join bundle", hint: nil),
        .init(
            code: "cluster_bootstrap_rolled_back", level: .warning, meaning: "a bootstrap failed and was undone",
            hint: "the code says which step failed (Kubernetes or RethinkDB warm-up, bundle contents); fix it and bootstrap again"),
        .init(code: "cluster_export_config", level: .info, meaning: "a join bundle was written for a cluster", hint: nil),
        // Restart (--restore)
        .init(
            code: "clusters_restored", level: .info, meaning: "the clusters registered before the last stop are listed again (mode, clusters, skipped)",
            hint: nil),
        .init(code: "cluster_restore_start", level: .info, meaning: "a restored cluster is being started (eagerly, or on its first request)", hint: nil),
        .init(
            code: "registration_skipped", level: .warning, meaning: "a registration record could not be used; the cluster was not restored",
            hint: "read the reason and the directory: a torn or foreign registration.json can be removed, then the cluster registered again"),
        // Store
        .init(
            code: "db_open_retry", level: .warning, meaning: "opening the cluster's DB failed; it is retried",
            hint: "usually a lock held by another process; if it repeats, see db_open_failed"),
        .init(code: "db_open_recovered", level: .info, meaning: "the DB opened after retries", hint: nil),
        .init(
            code: "db_open_failed", level: .error, meaning: "the cluster's DB could not be opened after every retry",
            hint:
                "check <state-dir>/clusters/<id>/local.db: permissions (0600, owned by the daemon's user), disk space, a process holding a lock (fuser), corruption (sqlite3 local.db 'PRAGMA integrity_check')"
        ),
        .init(
            code: "db_close_failed", level: .error, meaning: "closing the cluster's DB reported an error",
            hint: "check the disk for I/O errors; the WAL is replayed at the next open"),
        .init(code: "db_idle_sweep", level: .debug, meaning: "idle DB handles were swept", hint: nil),
        .init(code: "db_idle_close", level: .debug, meaning: "an idle DB handle was closed", hint: nil),
        // Settings
        .init(code: "settings_loaded", level: .info, meaning: "the host settings files were read", hint: nil),
        .init(code: "settings_updated", level: .info, meaning: "settings.set changed a cluster's settings (keys only)", hint: nil),
        .init(code: "settings_reloaded", level: .info, meaning: "a watched settings file changed and was applied (keys only)", hint: nil),
        .init(code: "host_settings_reloaded", level: .info, meaning: "the host settings files changed and were applied", hint: nil),
        .init(
            code: "settings_reload_rejected", level: .warning, meaning: "an edited settings file is invalid; the previous settings stay",
            hint: "fix the file at the line and field named in the message"),
        .init(
            code: "settings_field_ignored", level: .warning, meaning: "a field of GuildNet's files is not a setting and was ignored",
            hint: "remove the field or move it under settings; nothing else to do"),
        .init(
            code: "setting_ignored", level: .warning, meaning: "a stored setting is not valid and was skipped",
            hint: "settings.get shows the value in effect; settings.set writes a valid one"),
        .init(
            code: "legacy_setting_skipped", level: .warning, meaning: "a legacy cluster-settings field is not a valid setting",
            hint: "it is kept on write; set the value with settings.set to override it"),
        .init(
            code: "settings_watch_failed", level: .warning, meaning: "the settings files are not watched (inotify unavailable)",
            hint: "raise fs.inotify.max_user_watches / max_user_instances; changes are then picked up by polling or a restart"),
        // Kubernetes, RethinkDB, forwards, routes
        .init(code: "rethink_connector_rebuilt", level: .info, meaning: "rethinkdb.* settings changed; the connector was rebuilt", hint: nil),
        .init(
            code: "rethink_query_failed", level: .error, meaning: "a RethinkDB query of the cluster failed",
            hint: "rethink.status shows the address, last_error and connections; check rethinkdb.address / credentials and the server"),
        .init(code: "forward_started", level: .info, meaning: "a port-forward listens (forward, local_port)", hint: nil),
        .init(code: "forward_stopped", level: .info, meaning: "a port-forward stopped", hint: nil),
        .init(
            code: "forward_failed", level: .error, meaning: "a port-forward gave up or its pod was deleted",
            hint: "check the target with k8s.get (pod running, port open), then forward.start again"),
        .init(code: "route_selected", level: .info, meaning: "the cluster's API route was chosen (route, strategy, reason)", hint: nil),
        .init(code: "route_fallback", level: .info, meaning: "auto routing fell back past a failed route", hint: nil),
        .init(
            code: "route_failed", level: .error, meaning: "no API route works, or a route could not start",
            hint: "route.status shows each route's last probe; check the kubeconfig server, route.kubectl_path or route.socks5_address"),
        .init(code: "route_kubectl_started", level: .info, meaning: "the kubectl proxy process of the kubectl-proxy route started (pid)", hint: nil),
        .init(code: "route_kubectl_exited", level: .info, meaning: "that process exited (status)", hint: nil),
        .init(
            code: "route_kubectl_restart", level: .warning, meaning: "that process is restarted",
            hint: "if it repeats, run the kubectl proxy command by hand to see why it exits"),
    ]

    /// Every code by name.
    public static let byCode: [String: LogEventCode] = Dictionary(all.map { ($0.code, $0) }, uniquingKeysWith: { first, _ in first })

    /// The hint of `code`, if it has one.
    public static func hint(for code: String) -> String? {
        byCode[code]?.hint
    }
}
