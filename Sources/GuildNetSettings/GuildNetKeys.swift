import GuildNetCore

// Keys that GuildNet's own files carry (docs/operations.md, "GuildNet's files").
// Field names follow the Go app: `~/.guildnet/config.json` (pkg config.Config), the `.env` its
// `scripts/sync-env-from-config.sh` writes, and the `guildnet.config` join bundle that
// `scripts/generate_join_config.sh` writes (version 2; `cluster` mirrors settings.Cluster).

extension SettingKey where Value == Int? {
    /// An optional integer key (no default layer value).
    static func optionalInteger(_ name: String, _ range: ClosedRange<Int64>, _ summary: String) -> Self {
        Self(
            name: name, info: .init(name: name, type: .integer(range), defaultValue: nil, summary: summary), fallback: nil,
            decode: { $0.intValue.map { Optional(Int($0)) } })
    }
}

extension SettingKey where Value == String? {
    public static let tsAuthKey = optionalString(
        "tailscale.auth_key", secret: true, "Tailscale/Headscale pre-auth key (config.json auth_key, guildnet.config tailscale.preauth_key; secret).")
    public static let tsHostname = optionalString("tailscale.hostname", "tsnet hostname of this host (config.json hostname).")
    public static let listenLocal = optionalString("listen_local", hostPort: true, "Local listen address of the Go Host App (config.json listen_local).")
    public static let headscaleURL = optionalString("headscale.url", "Headscale server URL (.env HEADSCALE_URL).")
    public static let headscaleAuthKey = optionalString("headscale.auth_key", secret: true, "Headscale auth key (.env HEADSCALE_AUTHKEY; secret).")
    public static let hostappURL = optionalString("hostapp.url", "URL of the Host App that issued the join bundle (guildnet.config hostapp.url).")
    public static let hostappCAPEM = optionalString(
        "hostapp.ca_pem", "PEM CA that signs hostapp.url, kept for routing (guildnet.config hostapp.ca_pem).")
    public static let uiAPIBase = optionalString("ui.vite_api_base", "API base the web UI uses (guildnet.config ui.vite_api_base).")
    public static let ingressDomain = optionalString("ingress_domain", "Domain for workspace ingresses.")
    public static let ingressClassName = optionalString("ingress_class_name", "Ingress class of workspace ingresses.")
    public static let workspaceTLSSecret = optionalString("workspace_tls_secret", "Name of the TLS secret of workspace ingresses.")
    public static let certManagerIssuer = optionalString("cert_manager_issuer", "cert-manager issuer for workspace certificates.")
    public static let ingressAuthURL = optionalString("ingress_auth_url", "External auth URL of workspace ingresses.")
    public static let ingressAuthSignin = optionalString("ingress_auth_signin", "External auth sign-in URL of workspace ingresses.")
    public static let imagePullSecret = optionalString("image_pull_secret", "Name of the image pull secret for workspaces.")
    public static let orgID = optionalString("org_id", "Organisation scope of the cluster.")
}

extension SettingKey where Value == Int? {
    public static let dialTimeoutMilliseconds = optionalInteger(
        "dial_timeout_ms", 1...3_600_000, "Tailnet dial timeout of the Go Host App in ms (config.json dial_timeout_ms).")
}

extension SettingKey where Value == Bool {
    public static let workspaceLBEnabled = bool(
        "workspace_lb_enabled", default: false, "Expose workspaces as LoadBalancer services by default.")
}

extension SettingsSchema {
    /// The keys GuildNet's own files fill (see ``GuildNetSources``).
    static let guildNetKeys: [Entry] = [
        SettingKey<String?>.tsAuthKey.erased, SettingKey<String?>.tsHostname.erased, SettingKey<String?>.listenLocal.erased,
        SettingKey<String?>.headscaleURL.erased, SettingKey<String?>.headscaleAuthKey.erased, SettingKey<String?>.hostappURL.erased,
        SettingKey<String?>.hostappCAPEM.erased, SettingKey<String?>.uiAPIBase.erased, SettingKey<String?>.ingressDomain.erased,
        SettingKey<String?>.ingressClassName.erased, SettingKey<String?>.workspaceTLSSecret.erased,
        SettingKey<String?>.certManagerIssuer.erased, SettingKey<String?>.ingressAuthURL.erased,
        SettingKey<String?>.ingressAuthSignin.erased, SettingKey<String?>.imagePullSecret.erased, SettingKey<String?>.orgID.erased,
        SettingKey<Int?>.dialTimeoutMilliseconds.erased, SettingKey<Bool>.workspaceLBEnabled.erased,
    ]
}
