import GuildNetCore

/// The static documents: `/version`, discovery and the minimal OpenAPI v3 documents.
enum KubeSimDiscovery {
    static let version: JSONValue = [
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.4",
        "gitCommit": "59526cd4867447956156ae3a602fcbac10a2c335",
        "gitTreeState": "clean",
        "buildDate": "2025-04-22T16:02:27Z",
        "goVersion": "go1.23.6",
        "compiler": "gc",
        "platform": "linux/amd64",
    ]

    static let apiVersions: JSONValue = [
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [["clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:443"]],
    ]

    static let apiGroupList: JSONValue = ["kind": "APIGroupList", "apiVersion": "v1", "groups": []]

    static let coreResourceList: JSONValue = .object([
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": .array(
            KubeResource.allCases.map { resource in
                .object([
                    "name": .string(resource.rawValue),
                    "singularName": .string(resource.singular),
                    "namespaced": .bool(resource.namespaced),
                    "kind": .string(resource.kind),
                    "verbs": .array(KubeResource.verbs.map { .string($0) }),
                    "shortNames": .array(resource.shortNames.map { .string($0) }),
                ])
            }),
    ])

    /// The aggregated discovery media type (kubectl ≥ 1.26 asks for it first on `/api` and `/apis`).
    static let aggregatedContentType = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

    /// Whether an `Accept` header asks for aggregated discovery (v2, or v2beta1 answered as v2).
    static func wantsAggregated(_ accept: String?) -> Bool {
        guard let accept else { return false }
        return accept.contains("as=APIGroupDiscoveryList") && accept.contains("g=apidiscovery.k8s.io")
    }

    /// `/api` as an `APIGroupDiscoveryList`: the core group (empty name) with every simulated resource.
    static let aggregatedCore: JSONValue = .object([
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": [:],
        "items": [
            [
                "metadata": [:],
                "versions": [
                    .object([
                        "version": "v1",
                        "freshness": "Current",
                        "resources": .array(
                            KubeResource.allCases.map { resource in
                                .object([
                                    "resource": .string(resource.rawValue),
                                    "responseKind": ["group": "", "version": "v1", "kind": .string(resource.kind)],
                                    "scope": resource.namespaced ? "Namespaced" : "Cluster",
                                    "singularResource": .string(resource.singular),
                                    "verbs": .array(KubeResource.verbs.map { .string($0) }),
                                    "shortNames": .array(resource.shortNames.map { .string($0) }),
                                ])
                            }),
                    ])
                ],
            ]
        ],
    ])

    /// `/apis` as an `APIGroupDiscoveryList`: no groups beyond the core one.
    static let aggregatedGroups: JSONValue = [
        "kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": [:], "items": [],
    ]

    static let openAPIHash = "4d6f636b4b75626553696d"

    static let openAPIIndex: JSONValue = [
        "paths": ["api/v1": ["serverRelativeURL": .string("/openapi/v3/api/v1?hash=\(openAPIHash)")]]
    ]

    /// Per resource: the object paths with a PATCH operation tagged with its group-version-kind and
    /// a `fieldValidation` query parameter (kubectl then leaves validation to the server), and a
    /// permissive schema per kind.
    static let openAPICoreV1: JSONValue = {
        var paths: [String: JSONValue] = [:]
        var schemas: [String: JSONValue] = [:]
        for resource in KubeResource.allCases {
            let gvk: JSONValue = ["group": "", "version": "v1", "kind": .string(resource.kind)]
            let schemaName = "io.k8s.api.core.v1.\(resource.kind)"
            let ref: JSONValue = ["$ref": .string("#/components/schemas/\(schemaName)")]
            let content: JSONValue = .object([
                "application/json": ["schema": ref],
                "application/merge-patch+json": ["schema": ["type": "object"]],
                "application/strategic-merge-patch+json": ["schema": ["type": "object"]],
            ])
            let queryParams: JSONValue = [
                ["name": "fieldValidation", "in": "query", "schema": ["type": "string", "uniqueItems": true]],
                ["name": "fieldManager", "in": "query", "schema": ["type": "string", "uniqueItems": true]],
                ["name": "dryRun", "in": "query", "schema": ["type": "string", "uniqueItems": true]],
            ]
            let okResponse: JSONValue = ["200": ["description": "OK", "content": ["application/json": ["schema": ref]]]]
            let objectPath =
                resource.namespaced
                ? "/api/v1/namespaces/{namespace}/\(resource.rawValue)/{name}"
                : "/api/v1/\(resource.rawValue)/{name}"
            let collectionPath =
                resource.namespaced
                ? "/api/v1/namespaces/{namespace}/\(resource.rawValue)"
                : "/api/v1/\(resource.rawValue)"
            paths[objectPath] = [
                "get": [
                    "operationId": .string("read\(resource.kind)"),
                    "x-kubernetes-action": "get",
                    "x-kubernetes-group-version-kind": gvk,
                    "responses": okResponse,
                ],
                "put": [
                    "operationId": .string("replace\(resource.kind)"),
                    "x-kubernetes-action": "put",
                    "x-kubernetes-group-version-kind": gvk,
                    "parameters": queryParams,
                    "requestBody": ["content": ["application/json": ["schema": ref]], "required": true],
                    "responses": okResponse,
                ],
                "patch": [
                    "operationId": .string("patch\(resource.kind)"),
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": gvk,
                    "parameters": queryParams,
                    "requestBody": ["content": content, "required": true],
                    "responses": okResponse,
                ],
                "delete": [
                    "operationId": .string("delete\(resource.kind)"),
                    "x-kubernetes-action": "delete",
                    "x-kubernetes-group-version-kind": gvk,
                    "responses": okResponse,
                ],
            ]
            paths[collectionPath] = [
                "post": [
                    "operationId": .string("create\(resource.kind)"),
                    "x-kubernetes-action": "post",
                    "x-kubernetes-group-version-kind": gvk,
                    "parameters": queryParams,
                    "requestBody": ["content": ["application/json": ["schema": ref]], "required": true],
                    "responses": okResponse,
                ]
            ]
            let stringMap: JSONValue = ["type": "object", "additionalProperties": ["type": "string", "default": ""]]
            var properties: [String: JSONValue] = [
                "apiVersion": ["type": "string"],
                "kind": ["type": "string"],
                "metadata": ["allOf": [["$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]], "default": [:]],
            ]
            switch resource {
            case .configmaps:
                properties["data"] = stringMap
                properties["binaryData"] = ["type": "object", "additionalProperties": ["type": "string", "format": "byte"]]
                properties["immutable"] = ["type": "boolean"]
            default:
                properties["spec"] = ["type": "object", "x-kubernetes-preserve-unknown-fields": true]
                properties["status"] = ["type": "object", "x-kubernetes-preserve-unknown-fields": true]
            }
            if resource == .endpoints { properties["subsets"] = ["type": "array", "items": ["type": "object", "x-kubernetes-preserve-unknown-fields": true]] }
            schemas[schemaName] = [
                "type": "object",
                "x-kubernetes-group-version-kind": [gvk],
                "properties": .object(properties),
            ]
        }
        let stringMap: JSONValue = ["type": "object", "additionalProperties": ["type": "string", "default": ""]]
        schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"] = [
            "type": "object",
            "properties": [
                "name": ["type": "string"],
                "generateName": ["type": "string"],
                "namespace": ["type": "string"],
                "uid": ["type": "string"],
                "resourceVersion": ["type": "string"],
                "generation": ["type": "integer", "format": "int64"],
                "creationTimestamp": ["type": "string", "format": "date-time"],
                "deletionTimestamp": ["type": "string", "format": "date-time"],
                "labels": stringMap,
                "annotations": stringMap,
                "finalizers": [
                    "type": "array", "items": ["type": "string", "default": ""], "x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge",
                ],
                "ownerReferences": ["type": "array", "items": ["type": "object", "x-kubernetes-preserve-unknown-fields": true]],
            ],
        ]
        return .object([
            "openapi": "3.0.0",
            "info": ["title": "Kubernetes", "version": "v1.32.4"],
            "paths": .object(paths),
            "components": ["schemas": .object(schemas)],
        ])
    }()
}
