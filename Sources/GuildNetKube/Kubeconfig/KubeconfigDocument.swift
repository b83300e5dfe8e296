/// A kubeconfig file as written by kubectl: `clusters`, `users`, `contexts`, `current-context`.
/// Field names follow client-go's `clientcmd/api/v1` (with dashes).
public struct KubeconfigDocument: Codable, Sendable, Equatable {
    public var apiVersion: String?
    public var kind: String?
    public var clusters: [NamedCluster]?
    public var users: [NamedUser]?
    public var contexts: [NamedContext]?
    public var currentContext: String?

    enum CodingKeys: String, CodingKey {
        case apiVersion, kind, clusters, users, contexts
        case currentContext = "current-context"
    }

    public init(
        clusters: [NamedCluster] = [], users: [NamedUser] = [], contexts: [NamedContext] = [], currentContext: String? = nil
    ) {
        self.apiVersion = "v1"
        self.kind = "Config"
        self.clusters = clusters
        self.users = users
        self.contexts = contexts
        self.currentContext = currentContext
    }

    // An entry whose body is empty (`user:` with nothing under it) decodes as an empty body.

    public struct NamedCluster: Codable, Sendable, Equatable {
        public var name: String
        public var cluster: Cluster

        public init(name: String, cluster: Cluster) {
            self.name = name
            self.cluster = cluster
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decode(String.self, forKey: .name)
            cluster = try container.decodeIfPresent(Cluster.self, forKey: .cluster) ?? Cluster()
        }
    }

    public struct NamedUser: Codable, Sendable, Equatable {
        public var name: String
        public var user: User

        public init(name: String, user: User) {
            self.name = name
            self.user = user
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decode(String.self, forKey: .name)
            user = try container.decodeIfPresent(User.self, forKey: .user) ?? User()
        }
    }

    public struct NamedContext: Codable, Sendable, Equatable {
        public var name: String
        public var context: Context

        public init(name: String, context: Context) {
            self.name = name
            self.context = context
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decode(String.self, forKey: .name)
            context = try container.decodeIfPresent(Context.self, forKey: .context) ?? Context()
        }
    }

    public struct Cluster: Codable, Sendable, Equatable {
        public var server: String?
        public var certificateAuthority: String?
        public var certificateAuthorityData: String?
        public var insecureSkipTLSVerify: Bool?
        public var tlsServerName: String?
        public var proxyURL: String?
        public var disableCompression: Bool?

        public init() {}

        enum CodingKeys: String, CodingKey {
            case server
            case certificateAuthority = "certificate-authority"
            case certificateAuthorityData = "certificate-authority-data"
            case insecureSkipTLSVerify = "insecure-skip-tls-verify"
            case tlsServerName = "tls-server-name"
            case proxyURL = "proxy-url"
            case disableCompression = "disable-compression"
        }
    }

    public struct User: Codable, Sendable, Equatable {
        public var clientCertificate: String?
        public var clientCertificateData: String?
        public var clientKey: String?
        public var clientKeyData: String?
        public var token: String?
        public var tokenFile: String?
        public var username: String?
        public var password: String?
        public var exec: ExecConfig?
        /// Present only to be refused with a clear error (auth-provider plugins are not supported).
        public var authProvider: AuthProvider?

        public init() {}

        enum CodingKeys: String, CodingKey {
            case clientCertificate = "client-certificate"
            case clientCertificateData = "client-certificate-data"
            case clientKey = "client-key"
            case clientKeyData = "client-key-data"
            case token, tokenFile, username, password, exec
            case authProvider = "auth-provider"
        }
    }

    public struct AuthProvider: Codable, Sendable, Equatable {
        public var name: String?
    }

    public struct ExecConfig: Codable, Sendable, Equatable {
        public var apiVersion: String?
        public var command: String?
        public var args: [String]?
        public var env: [EnvVar]?
        public var installHint: String?
        public var provideClusterInfo: Bool?
        public var interactiveMode: String?

        public struct EnvVar: Codable, Sendable, Equatable {
            public var name: String
            public var value: String

            public init(name: String, value: String) {
                self.name = name
                self.value = value
            }
        }

        public init() {}
    }

    public struct Context: Codable, Sendable, Equatable {
        public var cluster: String?
        public var user: String?
        public var namespace: String?

        public init(cluster: String? = nil, user: String? = nil, namespace: String? = nil) {
            self.cluster = cluster
            self.user = user
            self.namespace = namespace
        }
    }
}
