import GuildNetRethink
import Logging

/// How RethinkSim is configured.
public struct RethinkSimOptions: Sendable {
    /// Address to bind (loopback); port 0 picks a free port.
    public var host: String = "127.0.0.1"
    public var port: Int = 0
    /// Users and their passwords (RethinkDB's default: `admin` with an empty password).
    public var users: [String: String] = ["admin": ""]
    /// SCRAM-SHA-256 iteration count announced to clients (RethinkDB's default 4096).
    public var iterations: Int = SCRAM.defaultIterations
    /// Errors only by default, so `hostapp sim rethink` keeps stdout clean.
    public var logger: Logger = {
        var logger = Logger(label: "RethinkSim")
        logger.logLevel = .error
        return logger
    }()
    /// Rows per response of a stream or changefeed; more rows page with SUCCESS_PARTIAL and CONTINUE.
    public var batchSize: Int = 1000
    /// Query frames of this many bytes or more get CLIENT_ERROR and the connection is closed (RethinkDB: 128 MiB).
    public var maxQueryBytes: Int = 128 * 1024 * 1024
    /// `server_version` of the handshake and the name in SERVER_INFO and table configurations.
    public var serverVersion: String = "2.4.4"
    public var serverName: String = "rethinksim"
    /// How long tables stay unavailable after ``RethinkSim/restart(unavailableFor:)``.
    public var restartUnavailableFor: Duration = .seconds(1)

    public init() {}
}

/// Where a running RethinkSim listens.
public struct RethinkSimEndpoint: Sendable, Hashable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}
