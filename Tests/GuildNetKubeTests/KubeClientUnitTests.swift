import AsyncHTTPClient
import Foundation
import GuildNetCore
import NIOCore
import Testing

@testable import GuildNetKube

/// Pure parts of the client: resource parsing, Status decoding, watch line splitting, the cache.
@Suite("Kube client units")
struct KubeClientUnitTests {
    @Test("resources parse from names, group/version/plural and API paths")
    func resourceParsing() throws {
        #expect(try KubeAPIResource.parse("pods") == .pods)
        #expect(try KubeAPIResource.parse("v1/pods") == .pods)
        #expect(try KubeAPIResource.parse("namespaces") == .namespaces)
        #expect(try KubeAPIResource.parse("/api/v1/namespaces") == .namespaces)
        let deployments = try KubeAPIResource.parse("apps/v1/deployments")
        #expect(deployments == KubeAPIResource(group: "apps", version: "v1", plural: "deployments", namespaced: true))
        #expect(try KubeAPIResource.parse("/apis/apps/v1/deployments") == deployments)
        #expect(try KubeAPIResource.parse("/apis/apps/v1/namespaces/prod/deployments") == deployments)
        #expect(try KubeAPIResource.parse("/api/v1/nodes").namespaced == false)
        for bad in ["", "/", "a/b/c/d", "/api", "/apis/apps/v1", "/api/v1/namespaces/x/pods/extra", "po ds", "pods?x=1", "../pods"] {
            #expect(throws: HostError.self, "\(bad)") { _ = try KubeAPIResource.parse(bad) }
        }
    }

    @Test("paths for collections and objects, core and named groups")
    func paths() {
        #expect(KubeAPIResource.pods.collectionPath() == "/api/v1/pods")
        #expect(KubeAPIResource.pods.collectionPath(namespace: "kube-system") == "/api/v1/namespaces/kube-system/pods")
        #expect(KubeAPIResource.pods.objectPath(namespace: "default", name: "web-0") == "/api/v1/namespaces/default/pods/web-0")
        #expect(KubeAPIResource.namespaces.objectPath(namespace: "ignored", name: "prod") == "/api/v1/namespaces/prod")
        let deployments = KubeAPIResource(group: "apps", version: "v1", plural: "deployments")
        #expect(deployments.collectionPath(namespace: "a") == "/apis/apps/v1/namespaces/a/deployments")
        #expect(deployments.description == "apps/v1/deployments")
        #expect(KubeAPIResource.escape("a b/c") == "a%20b%2Fc")
    }

    @Test(
        "Status bodies map to error codes, transient or fatal",
        arguments: [
            (404, "NotFound", ErrorCode.k8sNotFound, false),
            (401, "Unauthorized", .k8sUnauthorized, false),
            (403, "Forbidden", .k8sForbidden, false),
            (409, "Conflict", .k8sConflict, true),
            (409, "AlreadyExists", .k8sAlreadyExists, false),
            (410, "Expired", .k8sExpired, true),
            (410, "Gone", .k8sExpired, true),
            (422, "Invalid", .k8sInvalid, false),
            (400, "BadRequest", .k8sInvalid, false),
            (429, "TooManyRequests", .k8sTooManyRequests, true),
            (500, "InternalError", .k8sServerError, true),
            (503, "ServiceUnavailable", .k8sUnavailable, true),
            (504, "Timeout", .k8sServerTimeout, true),
            (500, "ServerTimeout", .k8sServerTimeout, true),
        ])
    func statusMapping(status: Int, reason: String, code: ErrorCode, transient: Bool) {
        let body = JSONValue.object([
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": .string(reason), "message": "it failed",
            "code": .int(Int64(status)), "details": ["retryAfterSeconds": 3],
        ]).serialized
        let error = KubeAPIError.decode(statusCode: status, body: body, retryAfterHeader: nil, request: "GET /api/v1/pods")
        #expect(error.reason == reason)
        #expect(error.retryAfterSeconds == 3)
        #expect(error.hostError.code == code)
        #expect(error.hostError.transient == transient)
        #expect(error.hostError.message.contains("it failed"))
        #expect(error.hostError.message.contains("GET /api/v1/pods"))
    }

    @Test("Retry-After: integer seconds honoured, HTTP dates ignored, non-Status bodies still typed")
    func retryAfterParsing() {
        #expect(KubeAPIError.decode(statusCode: 429, body: [], retryAfterHeader: "2", request: "").retryAfterSeconds == 2)
        #expect(
            KubeAPIError.decode(statusCode: 429, body: [], retryAfterHeader: "Wed, 21 Oct 2015 07:28:00 GMT", request: "").retryAfterSeconds
                == nil)
        let html = KubeAPIError.decode(statusCode: 502, body: Array("<html>bad gateway</html>".utf8), retryAfterHeader: nil, request: "")
        #expect(html.hostError.code == .k8sServerError)
        #expect(html.reason.isEmpty)
    }

    @Test("watch lines split across chunks, several per chunk, blank lines skipped")
    func lineSplitting() throws {
        var splitter = KubeWatchLineSplitter(maxLineBytes: 1 << 20)
        #expect(try splitter.append(ByteBuffer(string: "{\"a\":1}\n{\"b\"")).map { String(decoding: $0, as: UTF8.self) } == ["{\"a\":1}"])
        #expect(try splitter.append(ByteBuffer(string: ":2}")).isEmpty)
        #expect(splitter.hasPartialLine)
        let lines = try splitter.append(ByteBuffer(string: "\n\r\n{\"c\":3}\n"))
        #expect(lines.map { String(decoding: $0, as: UTF8.self) } == ["{\"b\":2}", "{\"c\":3}"])
        #expect(!splitter.hasPartialLine)
    }

    @Test("an oversized line is refused, in one chunk or accumulated across many")
    func lineTooLong() {
        var one = KubeWatchLineSplitter(maxLineBytes: 16)
        #expect(throws: KubeWatchLineSplitter.LineTooLong.self) { _ = try one.append(ByteBuffer(string: String(repeating: "x", count: 40) + "\n")) }
        var many = KubeWatchLineSplitter(maxLineBytes: 16)
        #expect(throws: KubeWatchLineSplitter.LineTooLong.self) {
            for _ in 0..<10 { _ = try many.append(ByteBuffer(string: "xxxx")) }
        }
    }

    @Test(
        "hostile or garbled watch lines are k8s_bad_response, never a crash",
        arguments: [
            "not json", "[1,2]", "{\"type\":\"ADDED\"}", "{\"type\":\"NOPE\",\"object\":{}}", "{\"type\":\"ADDED\",\"object\":3}",
            String(repeating: "[", count: 10_000), "{\"type\":\"ADDED\",\"object\":{\"a\":\"\u{1}\"}}", "\u{FF}\u{FE}",
        ])
    func garbledLines(line: String) {
        do {
            _ = try KubeWatchEvent.decode(line: Array(line.utf8), request: "WATCH /api/v1/pods")
            Issue.record("accepted \(line.prefix(40))")
        } catch {
            #expect(error.code == .k8sBadResponse)
        }
    }

    @Test("a well-formed event decodes with its resourceVersion")
    func eventDecoding() throws {
        let line = Array(#"{"type":"MODIFIED","object":{"kind":"Pod","metadata":{"name":"a","namespace":"d","resourceVersion":"42"}}}"#.utf8)
        let event = try KubeWatchEvent.decode(line: line, request: "")
        #expect(event.type == .modified)
        #expect(event.resourceVersion == "42")
    }

    @Test("the cache applies events in O(1) and a relist yields exactly the differences")
    func cacheDiff() {
        func pod(_ name: String, _ rv: String) -> JSONValue {
            ["metadata": ["name": .string(name), "namespace": "d", "resourceVersion": .string(rv)]]
        }
        var cache = InformerCache()
        #expect(cache.apply(.added, pod("a", "1")) == .added(pod("a", "1")))
        #expect(cache.apply(.added, pod("a", "2")) == .modified(pod("a", "2")))
        #expect(cache.apply(.modified, pod("b", "3")) == .added(pod("b", "3")))
        #expect(cache.apply(.deleted, pod("zz", "4")) == nil)
        #expect(cache.apply(.added, ["metadata": [:]]) == nil)
        #expect(cache.count == 2)
        let changes = cache.replace(with: [pod("a", "2"), pod("b", "5"), pod("c", "6")])
        #expect(changes.count == 2)
        #expect(changes.contains(.modified(pod("b", "5"))))
        #expect(changes.contains(.added(pod("c", "6"))))
        let removal = cache.replace(with: [pod("c", "6")])
        #expect(Set(removal.compactMap { $0.object?["metadata"]?["name"]?.stringValue }) == ["a", "b"])
        #expect(removal.allSatisfy { $0.watchType == "DELETED" })
        #expect(cache.count == 1)
        #expect(cache[InformerKey(namespace: "d", name: "c")] == pod("c", "6"))
    }

    @Test("proxy-url maps to SOCKS5 or an HTTP CONNECT proxy")
    func proxies() throws {
        let socks = try #require(try KubeClient.proxy("socks5://10.0.0.9:1081"))
        #expect(socks.host == "10.0.0.9" && socks.port == 1081)
        #expect(socks == .socksServer(host: "10.0.0.9", port: 1081))
        let http = try #require(try KubeClient.proxy("http://proxy.local:3128"))
        #expect(http == .server(host: "proxy.local", port: 3128))
        #expect(try KubeClient.proxy("https://proxy.local")?.port == 443)
        #expect(try KubeClient.proxy(nil) == nil)
        #expect(throws: HostError.self) { _ = try KubeClient.proxy("ftp://proxy.local") }
    }
}
