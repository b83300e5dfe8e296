import GuildNetCore

/// The port-forward manager's error codes.
extension ErrorCode {
    /// The local port asked for is taken (by another forward or any other process on the host).
    public static let forwardPortInUse: ErrorCode = "forward_port_in_use"
    /// No forward with that id in the cluster.
    public static let forwardNotFound: ErrorCode = "forward_not_found"
    /// The forwarded pod was deleted; a pod forward does not follow it (a service forward does).
    public static let podGone: ErrorCode = "pod_gone"
    /// The pod exists but is not `Running`, so nothing can be forwarded to it.
    public static let podNotRunning = ErrorCode("pod_not_running", transient: true)
    /// The service selects no ready, running pod right now.
    public static let serviceNoReadyPod = ErrorCode("service_no_ready_pod", transient: true)
}
