import Foundation
import GuildNetCore
import GuildNetRethink
import NIOCore

/// One user's SCRAM credential: the salt and the keys derived from the password (never the password).
struct RethinkSimCredential: Sendable {
    var salt: [UInt8]
    var iterations: Int
    var keys: SCRAM.Keys

    init(password: String, iterations: Int) throws {
        var generator = SystemRandomNumberGenerator()
        salt = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        self.iterations = iterations
        keys = try SCRAM.Keys(password: password, salt: salt, iterations: iterations)
    }
}

/// Open client channels, so faults and shutdown can close them.
final class RethinkSimConnections: Sendable {
    private let channels = LockedValue<[ObjectIdentifier: any Channel]>([:])

    func register(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        channels.withLock { $0[id] = channel }
        channel.closeFuture.whenComplete { [channels] _ in
            _ = channels.withLock { $0.removeValue(forKey: id) }
        }
    }

    var count: Int { channels.withLock { $0.count } }

    /// Closes every client connection; returns how many there were.
    @discardableResult
    func closeAll() -> Int {
        let all = channels.withLock { Array($0.values) }
        for channel in all { channel.close(promise: nil) }
        return all.count
    }
}

/// The event streams of authenticated sessions, to wake them when stalled replies are released.
final class RethinkSimSessions: Sendable {
    private let streams = LockedValue<(next: Int, all: [Int: AsyncStream<RethinkSessionEvent>.Continuation])>((0, [:]))

    func register(_ continuation: AsyncStream<RethinkSessionEvent>.Continuation) -> Int {
        streams.withLock { state in
            state.next += 1
            state.all[state.next] = continuation
            return state.next
        }
    }

    func remove(_ id: Int) {
        _ = streams.withLock { $0.all.removeValue(forKey: id) }
    }

    func broadcast(_ event: RethinkSessionEvent) {
        let all = streams.withLock { Array($0.all.values) }
        for continuation in all { continuation.yield(event) }
    }
}

/// State shared by the listener, the connections and the public API: credentials, faults, registries.
final class RethinkSimShared: Sendable {
    let options: RethinkSimOptions
    let serverID = UUID().uuidString.lowercased()
    let store: RethinkSimStore
    let credentials: LockedValue<[String: RethinkSimCredential]>
    let refuseAuthentication = LockedValue(false)
    let stalled = LockedValue(false)
    /// Frames held by `stallReplies()` across all connections.
    let heldFrames = LockedValue(0)
    let connections = RethinkSimConnections()
    let sessions = RethinkSimSessions()

    init(options: RethinkSimOptions) throws {
        self.options = options
        store = RethinkSimStore(serverName: options.serverName)
        var credentials: [String: RethinkSimCredential] = [:]
        for (user, password) in options.users {
            credentials[user] = try RethinkSimCredential(password: password, iterations: options.iterations)
        }
        self.credentials = LockedValue(credentials)
    }

    var isStalled: Bool { stalled.withLock { $0 } }
}
