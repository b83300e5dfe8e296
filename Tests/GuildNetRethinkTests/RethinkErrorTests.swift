import Foundation
import GuildNetCore
import NIOCore
import Testing

@testable import GuildNetRethink

@Suite struct RethinkErrorTests {
    /// Response errors: type, `e`, message → code.
    @Test(arguments: [
        (RethinkWire.ResponseType.runtimeError, Optional(RethinkWire.ErrorType.opFailed), "Database `x` does not exist.", ErrorCode.rethinkSchemaMissing),
        (.runtimeError, .opFailed, "Table `app.t` does not exist.", .rethinkSchemaMissing),
        (.runtimeError, .nonExistence, "Table `app.t` does not exist.", .rethinkSchemaMissing),
        (.runtimeError, .queryLogic, "Table `app.t` does not exist.", .rethinkQueryError),
        (.runtimeError, .opFailed, "Database `x` already exists.", .rethinkQueryError),
        (.runtimeError, .nonExistence, "No attribute `a` in object", .rethinkQueryError),
        (.runtimeError, .opFailed, "Table `` does not exist.", .rethinkQueryError),
        (.compileError, nil, "Expected 2 arguments but found 1.", .rethinkQueryError),
        (.clientError, .queryLogic, "Token 3 not in stream cache.", .rethinkQueryError),
    ])
    func classifiesResponseErrors(
        type: RethinkWire.ResponseType, errorType: RethinkWire.ErrorType?, message: String, code: ErrorCode
    ) {
        let error = RethinkError.classify(responseType: type, errorType: errorType, message: message).hostError
        #expect(error.code == code)
        #expect(error.message == message)
        #expect(!error.transient)
    }

    /// Availability errors (`OP_FAILED` other than the schema messages, `OP_INDETERMINATE`) are transient.
    @Test(arguments: [
        (RethinkWire.ErrorType.opFailed, "cannot subscribe to table `gn.items`: primary replica for shard [\"\", +inf) not available"),
        (.opFailed, "Cannot perform read: primary replica for shard [\"\", +inf) not available"),
        (.opFailed, "Changefeed aborted (table unavailable)."),
        (.opIndeterminate, "Cannot perform write: lost contact with primary replica"),
    ])
    func classifiesAvailabilityErrors(errorType: RethinkWire.ErrorType, message: String) throws {
        let classified = RethinkError.classify(responseType: .runtimeError, errorType: errorType, message: message)
        #expect(classified == .unavailable(message: message, errorType: errorType))
        let error = classified.hostError
        #expect(error.code == .rethinkUnavailable)
        #expect(error.transient)
        #expect(error.message.hasSuffix(message))
        let payload = Array(#"{"t":18,"e":\#(errorType.rawValue),"r":[\#(JSONValue.string(message).jsonString)],"b":[]}"#.utf8)
        #expect(try RethinkResponse(payload: payload).error == classified)
    }

    @Test func indexMissingIsAQueryError() {
        let error = RethinkError.classify(
            responseType: .runtimeError, errorType: .opFailed, message: "Index `nope` was not found on table `test.t`.")
        #expect(error.hostError.code == .rethinkQueryError)
        #expect(!error.hostError.transient)
    }

    @Test func decodesErrorResponses() throws {
        let payload = Array(#"{"t":18,"e":4100000,"r":["Database `nope` does not exist."],"b":[]}"#.utf8)
        let response = try RethinkResponse(payload: payload)
        #expect(response.isError)
        #expect(response.error == .schemaMissing(message: "Database `nope` does not exist."))
        let partial = try RethinkResponse(payload: Array(#"{"t":3,"r":[1,2],"n":[1,5]}"#.utf8))
        #expect(partial.type == .successPartial)
        #expect(partial.notes == [.sequenceFeed, .includesStates])
        #expect(partial.isFeed)
        #expect(partial.error == nil)
    }

    @Test(arguments: ["nope", "[]", #"{"r":[]}"#, #"{"t":99,"r":[]}"#, #"{"t":1}"#])
    func rejectsMalformedResponses(text: String) {
        #expect(throws: RethinkError.self) { try RethinkResponse(payload: Array(text.utf8)) }
    }

    /// Handshake `error_code`s 10–20 are authentication failures (fatal); others protocol errors.
    @Test(arguments: [
        (Int64(12), ErrorCode.rethinkAuthFailed), (10, .rethinkAuthFailed), (17, .rethinkAuthFailed), (20, .rethinkAuthFailed),
        (1, .rethinkProtocolError), (2, .rethinkProtocolError), (8, .rethinkProtocolError), (21, .rethinkProtocolError),
    ])
    func classifiesHandshakeErrors(code: Int64, expected: ErrorCode) {
        let error = RethinkError.classifyHandshake(errorCode: code, message: "Wrong password", user: "admin").hostError
        #expect(error.code == expected)
        #expect(!error.transient)
    }

    @Test func classifiesConnectFailures() {
        let address = RethinkAddress(host: "db.invalid", port: 28015)
        let timeout = RethinkError.classifyConnect(ChannelError.connectTimeout(.seconds(1)), address: address).hostError
        #expect(timeout.code == .rethinkUnreachable)
        #expect(timeout.transient)
        #expect(timeout.message.contains("db.invalid:28015"))
        let refused = RethinkError.classifyConnect(IOError(errnoCode: ECONNREFUSED, reason: "connect"), address: address).hostError
        #expect(refused.code == .rethinkUnreachable)
        #expect(refused.message.contains("connection refused"))
    }

    @Test func transienceOfEachClass() {
        #expect(RethinkError.connectionLost(reason: "x").hostError.transient)
        #expect(RethinkError.connectionLost(reason: "x").hostError.code == .rethinkConnectionLost)
        #expect(RethinkError.unreachable(address: "a", reason: "b").hostError.transient)
        #expect(!RethinkError.authenticationFailed(user: "u", reason: "r").hostError.transient)
        #expect(!RethinkError.protocolViolation(reason: "r").hostError.transient)
        #expect(RethinkError.protocolViolation(reason: "r").hostError.code == .rethinkProtocolError)
        #expect(RethinkError.timeout(what: "q", after: .seconds(1)).hostError.code == .timeout)
        #expect(RethinkError.feedLimit(reason: "r").hostError.code == .rethinkFeedLimit)
        #expect(RethinkError.notConfigured(reason: "r").hostError.code == .rethinkNotConfigured)
        #expect(!RethinkError.shutDown.hostError.transient)
    }

    @Test(arguments: [
        ("db", "db", 28015), ("db:1234", "db", 1234), (" 10.0.0.1:9 ", "10.0.0.1", 9), ("[::1]", "::1", 28015),
        ("[::1]:5", "::1", 5), ("rethinkdb.ns.svc.cluster.local:28015", "rethinkdb.ns.svc.cluster.local", 28015),
    ])
    func parsesAddresses(text: String, host: String, port: Int) throws {
        let address = try RethinkAddress(parsing: text)
        #expect(address == RethinkAddress(host: host, port: port))
        #expect(try RethinkAddress(parsing: address.description) == address)
    }

    @Test(arguments: ["", ":1", "db:0", "db:70000", "db:x", "::1", "[::1", "[::1]x", "a b"])
    func rejectsBadAddresses(text: String) {
        #expect(throws: HostError.self) { try RethinkAddress(parsing: text) }
    }

    @Test func configurationNeverShowsThePassword() {
        let config = RethinkConnectorConfiguration(address: RethinkAddress(host: "db"), user: "admin", password: "hunter2-secret")
        #expect(!config.description.contains("hunter2"))
        var dumped = ""
        dump(config, to: &dumped)
        #expect(!dumped.contains("hunter2"))
        #expect(!"\(config)".contains("hunter2"))
    }
}
