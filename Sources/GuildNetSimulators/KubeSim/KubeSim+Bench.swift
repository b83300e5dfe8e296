import GuildNetCore

/// Bulk mutations for benchmarks and load tests: many writes in one turn of the store, so the
/// generator costs little next to what it generates (every write still bumps the resourceVersion,
/// enters the history and reaches open watches, exactly like a write over HTTP).
extension KubeSim {
    /// Creates `count` pods `prefix-00000…` in `namespace`; returns the last resourceVersion.
    @discardableResult
    public func bulkCreatePods(namespace: String = "default", prefix: String, count: Int, start: Int = 0) async throws -> Int64 {
        try await shared.store.bulkCreatePods(namespace: namespace, prefix: prefix, range: start..<(start + max(0, count)))
    }

    /// Merge-patches each named pod once with a new `metadata.annotations.bench` value (one
    /// MODIFIED event each); returns the last resourceVersion.
    @discardableResult
    public func bulkTouchPods(namespace: String = "default", names: [String], stamp: String) async throws -> Int64 {
        try await shared.store.bulkTouch(.pods, namespace: namespace, names: names, stamp: stamp)
    }

    /// The pod a bulk create makes (small, with the fields a real pod list carries most often).
    public static func benchPod(name: String, namespace: String, index: Int) -> JSONValue {
        [
            "metadata": ["name": .string(name), "namespace": .string(namespace), "labels": ["app": "bench", "shard": .string(String(index % 16))]],
            "spec": ["nodeName": "kubesim-node", "containers": [["name": "app", "image": "registry.k8s.io/pause:3.10"]]],
            "status": ["phase": "Running", "podIP": .string("10.\(index / 65536 % 256).\(index / 256 % 256).\(index % 256)")],
        ]
    }
}

extension KubeStore {
    func bulkCreatePods(namespace: String, prefix: String, range: Range<Int>) throws -> Int64 {
        for index in range {
            let name = prefix + "-" + String(index)
            _ = try create(.pods, namespace: namespace, object: KubeSim.benchPod(name: name, namespace: namespace, index: index))
        }
        return currentResourceVersion
    }

    func bulkTouch(_ resource: KubeResource, namespace: String, names: [String], stamp: String) throws -> Int64 {
        let patch: JSONValue = ["metadata": ["annotations": ["bench": .string(stamp)]]]
        for name in names {
            _ = try self.patch(resource, namespace: namespace, name: name, patch: patch)
        }
        return currentResourceVersion
    }
}
