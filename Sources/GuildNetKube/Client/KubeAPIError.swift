import Foundation
import GuildNetCore

/// A failed Kubernetes API call as the server described it: the HTTP status, the `Status` body's
/// `reason` and `message`, and any `Retry-After`. Converted to ``HostError`` (``hostError``) when
/// it leaves this module; the message never carries credentials (requests are described by verb
/// and path only).
public struct KubeAPIError: Error, Sendable, Equatable, CustomStringConvertible {
    /// HTTP status (equal to `Status.code` for a well-formed reply).
    public var statusCode: Int
    /// `Status.reason` (`NotFound`, `Expired`, ...), empty when the body was not a Status.
    public var reason: String
    /// `Status.message`, or a short description of a non-Status body.
    public var message: String
    /// Seconds from `Retry-After` (or `details.retryAfterSeconds`), when given as an integer.
    public var retryAfterSeconds: Int?
    /// What was asked, e.g. `GET /api/v1/namespaces/default/pods/x`.
    public var request: String

    public init(statusCode: Int, reason: String, message: String, retryAfterSeconds: Int? = nil, request: String = "") {
        self.statusCode = statusCode
        self.reason = reason
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
        self.request = request
    }

    /// Decodes an error reply: a `Status` body when there is one, else the HTTP status alone.
    /// `retryAfterHeader` is the raw `Retry-After` header (HTTP-date values are ignored, as client-go does).
    public static func decode(statusCode: Int, body: [UInt8], retryAfterHeader: String?, request: String) -> KubeAPIError {
        var retryAfter = retryAfterHeader.flatMap { Int($0.trimmingCharacters(in: [" "])) }.flatMap { $0 >= 0 ? $0 : nil }
        if case .object(let status)? = try? JSONParser.parse(body), status["kind"]?.stringValue == "Status" {
            if retryAfter == nil, let seconds = status["details"]?["retryAfterSeconds"]?.intValue, seconds >= 0 {
                retryAfter = Int(seconds)
            }
            return KubeAPIError(
                statusCode: statusCode, reason: status["reason"]?.stringValue ?? "",
                message: clip(status["message"]?.stringValue ?? ""), retryAfterSeconds: retryAfter, request: request)
        }
        return KubeAPIError(
            statusCode: statusCode, reason: "", message: "the server answered HTTP \(statusCode) without a Status body",
            retryAfterSeconds: retryAfter, request: request)
    }

    /// The error carried by a watch `ERROR` event (its object is a `Status`).
    public static func fromStatusObject(_ object: JSONValue, request: String) -> KubeAPIError {
        let code = object["code"]?.intValue.map { Int($0) } ?? 500
        return KubeAPIError(
            statusCode: code, reason: object["reason"]?.stringValue ?? "",
            message: clip(object["message"]?.stringValue ?? "watch ERROR event"),
            retryAfterSeconds: object["details"]?["retryAfterSeconds"]?.intValue.map { Int($0) }, request: request)
    }

    /// `true` for 410 Gone or reason `Expired`/`Gone` (the resourceVersion or continue token is too old).
    public var isExpired: Bool { statusCode == 410 || reason == "Expired" || reason == "Gone" }

    /// The stable error code for this reply.
    public var code: ErrorCode {
        switch (statusCode, reason) {
        case (_, "Expired"), (_, "Gone"), (410, _): return .k8sExpired
        case (_, "AlreadyExists"): return .k8sAlreadyExists
        case (_, "Timeout"), (_, "ServerTimeout"), (504, _): return .k8sServerTimeout
        case (401, _): return .k8sUnauthorized
        case (403, _): return .k8sForbidden
        case (404, _): return .k8sNotFound
        case (409, _): return .k8sConflict
        case (429, _): return .k8sTooManyRequests
        case (503, _): return .k8sUnavailable
        case (500..., _): return .k8sServerError
        case (400..<500, _): return .k8sInvalid
        default: return .k8sBadResponse
        }
    }

    public var description: String {
        var text = request.isEmpty ? "" : "\(request): "
        text += "HTTP \(statusCode)"
        if !reason.isEmpty { text += " \(reason)" }
        if !message.isEmpty { text += ": \(message)" }
        if let retryAfterSeconds { text += " (retry after \(retryAfterSeconds)s)" }
        return text
    }

    /// As the module-crossing error, classified transient or fatal by its code.
    public var hostError: HostError { HostError(code, description) }

    /// Status messages are kept but bounded.
    static func clip(_ text: String) -> String {
        text.utf8.count <= 1024 ? text : String(text.prefix(1000)) + "…"
    }
}

extension HostError {
    /// A transport failure (connect, TLS, connection lost, timeout) of `request`.
    static func kubeTransport(_ request: String, _ detail: String) -> HostError {
        HostError(.k8sTransport, "\(request): \(detail)")
    }

    /// A reply that is not what the API promises (garbled JSON, wrong shape, line too long).
    static func kubeBadResponse(_ request: String, _ detail: String) -> HostError {
        HostError(.k8sBadResponse, "\(request): \(detail)")
    }
}
