/// Runs `sample` now and then every `interval` until the calling task is cancelled: the metric
/// samplers of the cluster children (each runs as a child task of its child's group).
/// `sample` runs on the caller's actor.
func sampleEvery(
    _ interval: Duration, isolation: isolated (any Actor)? = #isolation, _ sample: () async -> Void
) async {
    while !Task.isCancelled {
        await sample()
        do {
            try await Task.sleep(for: interval)
        } catch {
            return
        }
    }
}

/// How often subsystem counters are copied into a cluster's metric series.
let metricsSamplingInterval: Duration = .seconds(2)
