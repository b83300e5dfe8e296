import GuildNetCore

/// One decoded response `{"t":type,"r":[…],"e":errtype,"n":[notes]}`.
public struct RethinkResponse: Sendable, Equatable {
    public var type: RethinkWire.ResponseType
    public var results: [JSONValue]
    public var errorType: RethinkWire.ErrorType?
    public var notes: [RethinkWire.ResponseNote]

    public init(
        type: RethinkWire.ResponseType, results: [JSONValue], errorType: RethinkWire.ErrorType? = nil,
        notes: [RethinkWire.ResponseNote] = []
    ) {
        self.type = type
        self.results = results
        self.errorType = errorType
        self.notes = notes
    }

    /// Decodes a response payload.
    /// - Throws: ``RethinkError/protocolViolation(reason:)`` for anything that is not a response.
    public init(payload: [UInt8]) throws(RethinkError) {
        let json: JSONValue
        do {
            json = try JSONParser.parse(payload)
        } catch {
            throw .protocolViolation(reason: "response is not JSON (\(error))")
        }
        guard let object = json.objectValue else { throw .protocolViolation(reason: "response is not an object") }
        guard let rawType = object["t"]?.intValue, let type = RethinkWire.ResponseType(rawValue: rawType) else {
            throw .protocolViolation(reason: "response has no known \"t\" (\(object["t"]?.jsonString ?? "missing"))")
        }
        guard let results = object["r"]?.arrayValue else { throw .protocolViolation(reason: "response has no \"r\" array") }
        self.type = type
        self.results = results
        errorType = object["e"]?.intValue.flatMap(RethinkWire.ErrorType.init(rawValue:))
        notes = (object["n"]?.arrayValue ?? []).compactMap { $0.intValue.flatMap(RethinkWire.ResponseNote.init(rawValue:)) }
    }

    /// `true` for CLIENT_ERROR, COMPILE_ERROR and RUNTIME_ERROR.
    public var isError: Bool {
        type == .clientError || type == .compileError || type == .runtimeError
    }

    /// `true` when the notes mark a changefeed.
    public var isFeed: Bool {
        notes.contains { $0 == .sequenceFeed || $0 == .atomFeed || $0 == .orderByLimitFeed || $0 == .unionedFeed }
    }

    /// The classified error of an error response (message from `r[0]`), else `nil`.
    public var error: RethinkError? {
        guard isError else { return nil }
        let message = results.first?.stringValue ?? results.first?.jsonString ?? "unknown RethinkDB error"
        return RethinkError.classify(responseType: type, errorType: errorType, message: message)
    }
}
