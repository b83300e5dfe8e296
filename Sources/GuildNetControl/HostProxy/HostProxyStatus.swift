import GuildNetCore
import NIOCore
import NIOHTTP1

/// A reply the host proxy makes itself (401, 404, 502, ...): a Kubernetes `Status` object, so that
/// kubectl prints its message.
struct HostProxyStatus: Sendable {
    let code: Int
    let message: String

    init(_ code: Int, _ message: String) {
        self.code = code
        self.message = message
    }

    var status: HTTPResponseStatus { HTTPResponseStatus(statusCode: code) }

    /// The `reason` field Kubernetes uses for this code.
    var reason: String {
        switch code {
        case 400: "BadRequest"
        case 401: "Unauthorized"
        case 404: "NotFound"
        case 413: "RequestEntityTooLarge"
        case 504: "Timeout"
        default: "BadGateway"
        }
    }

    var body: String {
        let value: JSONValue = [
            "kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Failure", "message": .string(message),
            "reason": .string(reason), "code": .int(Int64(code)),
        ]
        return value.jsonString
    }

    /// The reply as bytes, closing the connection (the upgrade path).
    var rawReply: ByteBuffer {
        let text = body
        let head =
            "HTTP/1.1 \(code) \(status.reasonPhrase)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(text.utf8.count)\r\nConnection: close\r\n\r\n"
        return ByteBuffer(string: head + text)
    }

    /// The reply as response parts (keep-alive connections).
    var parts: [HTTPServerResponsePart] {
        let text = body
        let headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", String(text.utf8.count))])
        return [.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)), .body(.byteBuffer(ByteBuffer(string: text))), .end(nil)]
    }
}
