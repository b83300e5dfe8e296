import AsyncHTTPClient
import GuildNetCore
import NIOCore
import NIOHTTP1

extension KubeClient {
    /// Opens a watch: `?watch=true&resourceVersion=…&allowWatchBookmarks=…&timeoutSeconds=…`.
    ///
    /// Returns once the server accepted it (HTTP 200); events then arrive through the stream. An
    /// HTTP error (410 Expired, 429, 401, ...) throws here, without automatic `Retry-After` retries
    /// (an informer backs off itself). A too-old resourceVersion may also arrive as an `ERROR`
    /// event on an accepted stream. `namespace: nil` watches all namespaces.
    public func watch(
        _ resource: KubeAPIResource, namespace: String? = nil, resourceVersion: String? = nil, allowBookmarks: Bool = true,
        timeoutSeconds: Int? = nil, labelSelector: String? = nil, fieldSelector: String? = nil
    ) async throws -> KubeWatchStream {
        var query: [(String, String)] = [("watch", "true")]
        if let resourceVersion, !resourceVersion.isEmpty { query.append(("resourceVersion", resourceVersion)) }
        if allowBookmarks { query.append(("allowWatchBookmarks", "true")) }
        if let timeoutSeconds { query.append(("timeoutSeconds", String(max(0, timeoutSeconds)))) }
        if let labelSelector, !labelSelector.isEmpty { query.append(("labelSelector", labelSelector)) }
        if let fieldSelector, !fieldSelector.isEmpty { query.append(("fieldSelector", fieldSelector)) }
        let path = resource.collectionPath(namespace: resource.namespaced ? namespace : nil)
        let http = self.http
        let timeout = options.requestTimeout
        let response: HTTPClientResponse = try await exchange(.GET, path, query: query, maxRetries: 0) { request, description in
            // The deadline covers the reply head only; the body streams for as long as the watch lasts.
            let response = try await http.execute(request, deadline: .now() + .nanoseconds(Int64(timeout.seconds * 1e9)))
            let status = Int(response.status.code)
            if status == 200 { return .success(response) }
            do {
                let body = try await withDeadline(timeout, description) {
                    Array(try await response.body.collect(upTo: 1 << 20).readableBytesView)
                }
                return .failure(status: status, retryAfter: response.headers.first(name: "Retry-After"), body: body)
            } catch {
                if Task.isCancelled { throw CancellationError() }
                return .failure(status: status, retryAfter: response.headers.first(name: "Retry-After"), body: [])
            }
        }
        return KubeWatchStream(
            body: response.body, lease: WatchLease(counters: counters), request: "WATCH \(path)",
            maxLineBytes: options.maxWatchLineBytes)
    }
}
