import GuildNetCore

/// One way to reach a cluster's API server, in the order `auto` tries them (least invasive first).
public enum RouteKind: String, Sendable, CaseIterable, Comparable {
    /// The cluster's own client: its kubeconfig's server, TLS and credentials.
    case direct
    /// A supervised `kubectl proxy` child process on 127.0.0.1 (kubectl adds the credentials).
    case kubectlProxy = "kubectl-proxy"
    /// The kubeconfig's server through a SOCKS5 proxy (`route.socks5_address`), names sent unresolved.
    case tailnet

    public static func < (lhs: RouteKind, rhs: RouteKind) -> Bool {
        allCases.firstIndex(of: lhs) ?? 0 < allCases.firstIndex(of: rhs) ?? 0
    }
}

/// `route.strategy`: every route in order (`auto`), or one route used alone (pinned).
public enum RouteStrategy: Sendable, Equatable {
    case auto
    case pinned(RouteKind)

    /// Parses a `route.strategy` value (the schema has already validated it; unknown reads as auto).
    public init(setting: String) {
        self = RouteKind(rawValue: setting).map { .pinned($0) } ?? .auto
    }

    /// The routes tried, in order.
    var candidates: [RouteKind] {
        switch self {
        case .auto: RouteKind.allCases
        case .pinned(let kind): [kind]
        }
    }

    /// The value as written in settings.
    public var name: String {
        switch self {
        case .auto: "auto"
        case .pinned(let kind): kind.rawValue
        }
    }
}

/// The routes' error codes.
extension ErrorCode {
    /// The cluster's client moved to another route; a watch on the old one ended (subscribe again).
    public static let routeChanged = ErrorCode("route_changed", transient: true)
}
