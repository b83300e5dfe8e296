import GuildNetCore

/// Tuning of one ``KubeInformer`` (defaults are client-go's Reflector values).
public struct KubeInformerOptions: Sendable, Equatable {
    /// Page size of each (re)list.
    public var pageSize: Int = 500
    /// Each watch asks the server to end it after a number of seconds drawn from this range
    /// (client-go: uniform in [300, 600)).
    public var watchTimeoutSeconds: Range<Int> = 300..<600
    /// Delay before retrying after a failure: 0.8 s doubling to 30 s, jitter 1.0 (sleep in [d, 2d)).
    public var backoff = Backoff(initial: .milliseconds(800), multiplier: 2, cap: .seconds(30), jitter: 1.0)
    /// The backoff starts over after this long without a failure.
    public var backoffResetAfter: Duration = .seconds(120)
    /// A watch that ends cleanly this fast without a single event counts as a failure ("very short watch").
    public var minimumWatchDuration: Duration = .seconds(1)
    /// Optional selectors applied to the list and the watch.
    public var labelSelector: String?
    public var fieldSelector: String?

    public init() {}
}
