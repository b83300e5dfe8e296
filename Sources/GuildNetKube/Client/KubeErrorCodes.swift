import GuildNetCore

/// The Kubernetes client's error codes: one per Status reason class (see ``KubeAPIError``), with
/// their default classification.
extension ErrorCode {
    public static let k8sNotFound: ErrorCode = "k8s_not_found"
    public static let k8sUnauthorized: ErrorCode = "k8s_unauthorized"
    public static let k8sForbidden: ErrorCode = "k8s_forbidden"
    public static let k8sConflict = ErrorCode("k8s_conflict", transient: true)
    public static let k8sAlreadyExists: ErrorCode = "k8s_already_exists"
    public static let k8sInvalid: ErrorCode = "k8s_invalid"
    public static let k8sExpired = ErrorCode("k8s_expired", transient: true)
    public static let k8sTooManyRequests = ErrorCode("k8s_too_many_requests", transient: true)
    public static let k8sServerTimeout = ErrorCode("k8s_server_timeout", transient: true)
    public static let k8sServerError = ErrorCode("k8s_server_error", transient: true)
    public static let k8sTransport = ErrorCode("k8s_transport", transient: true)
    public static let k8sBadResponse: ErrorCode = "k8s_bad_response"
    public static let k8sUnavailable = ErrorCode("k8s_unavailable", transient: true)
    /// An exec credential plugin failed or timed out.
    public static let credentialPluginFailed = ErrorCode("credential_plugin_failed", transient: true)
}

extension ErrorCode {
    /// A port-forward tunnel could not be opened, or the server reported an error on it (the
    /// error channel's text is the message).
    public static let k8sPortForwardFailed = ErrorCode("k8s_port_forward_failed", transient: true)
}
