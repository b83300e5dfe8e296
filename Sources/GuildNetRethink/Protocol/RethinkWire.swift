import NIOCore

/// Numbers of the RethinkDB V1_0 wire protocol (rethinkdb `src/rdb_protocol/ql2.proto`), shared by the
/// client and by RethinkSim so both speak exactly the same dialect.
public enum RethinkWire {
    /// `V1_0` magic, sent by the client as a little-endian u32 before the handshake JSON.
    public static let magicV1_0: UInt32 = 0x34c2_bdc3
    /// The server reads at most this many bytes of one handshake message.
    public static let maxHandshakeMessage = 2048
    /// Bytes of a query/response frame header: token (u64 LE) then length (u32 LE).
    public static let frameHeaderSize = 12

    /// The first element of a query array.
    public enum QueryType: Int64, Sendable {
        case start = 1
        case `continue` = 2
        case stop = 3
        case noreplyWait = 4
        case serverInfo = 5
    }

    /// The `t` field of a response.
    public enum ResponseType: Int64, Sendable {
        case successAtom = 1
        case successSequence = 2
        case successPartial = 3
        case waitComplete = 4
        case serverInfo = 5
        case clientError = 16
        case compileError = 17
        case runtimeError = 18
    }

    /// The `e` field of an error response.
    public enum ErrorType: Int64, Sendable {
        case `internal` = 1_000_000
        case resourceLimit = 2_000_000
        case queryLogic = 3_000_000
        case nonExistence = 3_100_000
        case opFailed = 4_100_000
        case opIndeterminate = 4_200_000
        case user = 5_000_000
        case permissionError = 6_000_000
    }

    /// The `n` notes of a response.
    public enum ResponseNote: Int64, Sendable {
        case sequenceFeed = 1
        case atomFeed = 2
        case orderByLimitFeed = 3
        case unionedFeed = 4
        case includesStates = 5
    }

    /// Term types used by the builder subset (and by RethinkSim's evaluator).
    public enum TermType: Int64, Sendable, CaseIterable {
        case datum = 1
        case makeArray = 2
        case makeObj = 3
        case `var` = 10
        case error = 12
        case implicitVar = 13
        case db = 14
        case table = 15
        case get = 16
        case eq = 17
        case ne = 18
        case lt = 19
        case le = 20
        case gt = 21
        case ge = 22
        case not = 23
        case getField = 31
        case pluck = 33
        case filter = 39
        case orderBy = 41
        case count = 43
        case update = 53
        case delete = 54
        case replace = 55
        case insert = 56
        case dbCreate = 57
        case dbDrop = 58
        case dbList = 59
        case tableCreate = 60
        case tableDrop = 61
        case tableList = 62
        case and = 67
        case or = 66
        case funcall = 64
        case `func` = 69
        case limit = 71
        case asc = 73
        case desc = 74
        case indexCreate = 75
        case indexList = 77
        case getAll = 78
        case changes = 152
        case bracket = 170
        case wait = 177
    }

    /// Handshake `error_code`s sent by the server before closing (see `authentication_error.hpp`).
    public enum HandshakeErrorCode: Int64, Sendable {
        case badProtocolVersion = 1
        case unsupportedProtocolVersion = 2
        case badAuthenticationMethod = 3
        case unsupportedAuthenticationMethod = 4
        case authenticationNotString = 5
        case messageTooLong = 7
        case invalidJSON = 8
        case invalidEncoding = 10
        case invalidProof = 12
        case unknownUser = 17
        case otherError = 20

        /// The Python driver's rule: codes 10–20 are authentication errors.
        public static func isAuthentication(_ code: Int64) -> Bool { (10...20).contains(code) }
    }
}

/// One query or response frame: `token u64 LE | length u32 LE | UTF-8 JSON`.
public struct RethinkFrame: Sendable, Equatable {
    public var token: UInt64
    public var payload: [UInt8]

    public init(token: UInt64, payload: [UInt8]) {
        self.token = token
        self.payload = payload
    }

    /// Appends the frame to `buffer`.
    public func write(into buffer: inout ByteBuffer) {
        buffer.writeInteger(token, endianness: .little)
        buffer.writeInteger(UInt32(payload.count), endianness: .little)
        buffer.writeBytes(payload)
    }

    /// Reads one whole frame from `buffer`, or returns `nil` (consuming nothing) if it is not all there yet.
    /// - Throws: ``RethinkFrameError/tooLarge`` when the announced length exceeds `maxPayload`.
    public static func read(from buffer: inout ByteBuffer, maxPayload: Int) throws(RethinkFrameError) -> RethinkFrame? {
        guard buffer.readableBytes >= RethinkWire.frameHeaderSize,
            let token = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: UInt64.self),
            let length = buffer.getInteger(at: buffer.readerIndex + 8, endianness: .little, as: UInt32.self)
        else { return nil }
        guard Int(length) <= maxPayload else { throw .tooLarge(Int(length)) }
        guard buffer.readableBytes >= RethinkWire.frameHeaderSize + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: RethinkWire.frameHeaderSize)
        let payload = buffer.readBytes(length: Int(length)) ?? []
        return RethinkFrame(token: token, payload: payload)
    }
}

/// A frame that cannot be read.
public enum RethinkFrameError: Error, Sendable, Equatable {
    case tooLarge(Int)
}

/// Splits NUL-terminated handshake messages.
public enum RethinkHandshakeFraming {
    /// Reads one NUL-terminated message (without the NUL), or `nil` if the NUL has not arrived.
    /// - Throws: ``RethinkFrameError/tooLarge`` if more than ``RethinkWire/maxHandshakeMessage`` bytes arrive without a NUL.
    public static func readMessage(from buffer: inout ByteBuffer) throws(RethinkFrameError) -> [UInt8]? {
        let view = buffer.readableBytesView
        guard let nul = view.firstIndex(of: 0) else {
            if view.count > RethinkWire.maxHandshakeMessage { throw .tooLarge(view.count) }
            return nil
        }
        let length = nul - view.startIndex
        let message = buffer.readBytes(length: length) ?? []
        buffer.moveReaderIndex(forwardBy: 1)
        return message
    }
}
