import GuildNetCore

/// One page of a list: its items, the list's `metadata.resourceVersion`, and the `continue`
/// token when more pages follow.
public struct KubeListPage: Sendable, Equatable {
    public var items: [JSONValue]
    public var resourceVersion: String
    /// Non-nil (and non-empty) when another page follows.
    public var continueToken: String?
    /// `metadata.remainingItemCount`, when the server gives it.
    public var remainingItemCount: Int?

    public init(items: [JSONValue], resourceVersion: String, continueToken: String? = nil, remainingItemCount: Int? = nil) {
        self.items = items
        self.resourceVersion = resourceVersion
        self.continueToken = continueToken
        self.remainingItemCount = remainingItemCount
    }

    /// Reads a `…List` object; anything else is a `k8s_bad_response`.
    static func decode(_ value: JSONValue, request: String) throws(HostError) -> KubeListPage {
        guard case .object(let list) = value else { throw .kubeBadResponse(request, "the list reply is not a JSON object") }
        let items: [JSONValue]
        switch list["items"] {
        case .array(let array)?: items = array
        case .null?, nil: items = []
        default: throw .kubeBadResponse(request, "the list reply's items is not an array")
        }
        let metadata = list["metadata"]
        let token = metadata?["continue"]?.stringValue
        return KubeListPage(
            items: items, resourceVersion: metadata?["resourceVersion"]?.stringValue ?? "",
            continueToken: (token?.isEmpty ?? true) ? nil : token,
            remainingItemCount: metadata?["remainingItemCount"]?.intValue.map { Int($0) })
    }
}

/// A complete list (every page): the items and the resourceVersion to watch from.
public struct KubeList: Sendable, Equatable {
    public var items: [JSONValue]
    public var resourceVersion: String
    /// Pages fetched (1 for an unpaged list).
    public var pages: Int

    public init(items: [JSONValue], resourceVersion: String, pages: Int) {
        self.items = items
        self.resourceVersion = resourceVersion
        self.pages = pages
    }
}
