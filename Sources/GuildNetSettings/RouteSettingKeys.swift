import GuildNetCore

// The keys of a cluster's API routes (`route.strategy` is declared with the other string keys).

extension SettingKey where Value == String? {
    public static let routeKubectlPath = optionalString(
        "route.kubectl_path", "kubectl binary of the kubectl-proxy route (default: kubectl found on PATH).")
    public static let routeSOCKS5Address = optionalString(
        "route.socks5_address", hostPort: true, "SOCKS5 proxy (host:port) of the tailnet route, e.g. tailscaled's userspace proxy.")
    public static let routeSOCKS5Username = optionalString(
        "route.socks5_username", "RFC 1929 user name for route.socks5_address (with route.socks5_password).")
    public static let routeSOCKS5Password = optionalString(
        "route.socks5_password", secret: true, "RFC 1929 password for route.socks5_address (secret).")
}

extension SettingKey where Value == Int {
    public static let routeProbeIntervalMilliseconds = integer(
        "route.probe_interval_ms", 100...3_600_000, default: 30_000, "Time between two evaluations of the cluster's API routes.")
    public static let routeProbeTimeoutMilliseconds = integer(
        "route.probe_timeout_ms", 50...600_000, default: 5_000, "Deadline of one route health probe (GET /version).")
}

extension SettingsSchema {
    /// The route keys, appended to ``allKeys``.
    static let routeKeys: [Entry] = [
        SettingKey<String?>.routeKubectlPath.erased, SettingKey<String?>.routeSOCKS5Address.erased,
        SettingKey<String?>.routeSOCKS5Username.erased, SettingKey<String?>.routeSOCKS5Password.erased,
        SettingKey<Int>.routeProbeIntervalMilliseconds.erased, SettingKey<Int>.routeProbeTimeoutMilliseconds.erased,
    ]
}
