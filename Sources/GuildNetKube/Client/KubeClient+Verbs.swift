import GuildNetCore
import NIOHTTP1

/// get / list / create / update / patch / delete / raw GET.
extension KubeClient {
    /// The namespace to use: `namespace` when given, else the context's, for namespaced resources only.
    func scope(_ resource: KubeAPIResource, _ namespace: String?) -> String? {
        resource.namespaced ? (namespace ?? defaultNamespace) : nil
    }

    /// One object (`k8s_not_found` when absent).
    public func get(_ resource: KubeAPIResource, namespace: String? = nil, name: String) async throws -> JSONValue {
        try await sendJSON(.GET, resource.objectPath(namespace: scope(resource, namespace), name: name))
    }

    /// One page of a list. `namespace: nil` lists across all namespaces. `limit` 0 means unpaged.
    /// `resourceVersion` is sent only with the first page (never with `continueToken`), as client-go does.
    public func list(
        _ resource: KubeAPIResource, namespace: String? = nil, limit: Int = 0, continueToken: String? = nil,
        resourceVersion: String? = nil, labelSelector: String? = nil, fieldSelector: String? = nil
    ) async throws -> KubeListPage {
        var query: [(String, String)] = []
        if let labelSelector, !labelSelector.isEmpty { query.append(("labelSelector", labelSelector)) }
        if let fieldSelector, !fieldSelector.isEmpty { query.append(("fieldSelector", fieldSelector)) }
        if limit > 0 { query.append(("limit", String(limit))) }
        if let continueToken, !continueToken.isEmpty {
            query.append(("continue", continueToken))
        } else if let resourceVersion {
            query.append(("resourceVersion", resourceVersion))
        }
        let path = resource.collectionPath(namespace: resource.namespaced ? namespace : nil)
        let value = try await sendJSON(.GET, path, query: query)
        return try KubeListPage.decode(value, request: "GET \(path)")
    }

    /// Every page of a list (client-go's pager): pages of `pageSize` following `continue`; when the
    /// continue token of page 2 or later has expired (410), the whole list is fetched once more
    /// without a limit. The resourceVersion is the first page's (every later event is replayed by a
    /// watch from it, even on a server whose pages are not one snapshot).
    public func listAll(
        _ resource: KubeAPIResource, namespace: String? = nil, pageSize: Int = 500, resourceVersion: String? = nil,
        labelSelector: String? = nil, fieldSelector: String? = nil
    ) async throws -> KubeList {
        var first = try await list(
            resource, namespace: namespace, limit: pageSize, resourceVersion: resourceVersion, labelSelector: labelSelector,
            fieldSelector: fieldSelector)
        var items = first.items
        var pages = 1
        var token = first.continueToken
        while let next = token {
            let page: KubeListPage
            do {
                page = try await list(
                    resource, namespace: namespace, limit: pageSize, continueToken: next, labelSelector: labelSelector,
                    fieldSelector: fieldSelector)
            } catch let error as HostError where error.code == .k8sExpired {
                logger.debug("continue token expired; listing without a limit", metadata: ["resource": "\(resource)"])
                first = try await list(
                    resource, namespace: namespace, limit: 0, resourceVersion: resourceVersion, labelSelector: labelSelector,
                    fieldSelector: fieldSelector)
                return KubeList(items: first.items, resourceVersion: first.resourceVersion, pages: pages + 1)
            }
            pages += 1
            items.append(contentsOf: page.items)
            token = page.continueToken
        }
        return KubeList(items: items, resourceVersion: first.resourceVersion, pages: pages)
    }

    /// Creates `object` (`k8s_already_exists` when the name is taken).
    public func create(_ resource: KubeAPIResource, namespace: String? = nil, _ object: JSONValue) async throws -> JSONValue {
        try await sendJSON(.POST, resource.collectionPath(namespace: scope(resource, namespace)), body: object)
    }

    /// Replaces an object; a stale `metadata.resourceVersion` is a `k8s_conflict`.
    public func update(_ resource: KubeAPIResource, namespace: String? = nil, name: String, _ object: JSONValue) async throws -> JSONValue {
        try await sendJSON(.PUT, resource.objectPath(namespace: scope(resource, namespace), name: name), body: object)
    }

    /// Applies a JSON merge patch (RFC 7386).
    public func patch(_ resource: KubeAPIResource, namespace: String? = nil, name: String, _ patch: JSONValue) async throws -> JSONValue {
        try await sendJSON(
            .PATCH, resource.objectPath(namespace: scope(resource, namespace), name: name), body: patch,
            contentType: "application/merge-patch+json")
    }

    /// Deletes an object; returns what the server answered (the object or a Status).
    @discardableResult
    public func delete(_ resource: KubeAPIResource, namespace: String? = nil, name: String) async throws -> JSONValue {
        try await sendJSON(.DELETE, resource.objectPath(namespace: scope(resource, namespace), name: name))
    }

    /// GET of any API path (`/version`, `/api`, `/apis/apps/v1`); the body as bytes.
    public func rawGET(_ path: String) async throws -> [UInt8] {
        guard path.hasPrefix("/"), !path.contains("..") else {
            throw HostError(.invalidField, "raw path must start with / (got \(String(reflecting: String(path.prefix(200)))))")
        }
        return try await send(.GET, path)
    }

    /// GET of any API path, parsed as JSON.
    public func rawGETJSON(_ path: String) async throws -> JSONValue {
        let bytes = try await rawGET(path)
        do {
            return try JSONParser.parse(bytes)
        } catch {
            throw HostError.kubeBadResponse("GET \(path)", "the reply is not valid JSON (\(error))")
        }
    }
}
