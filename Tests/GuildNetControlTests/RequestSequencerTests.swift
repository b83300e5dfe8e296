import GuildNetCore
import TestSupport
import Testing

@testable import GuildNetControl

/// The per-connection ordering rules, without a transport.
/// Run with `swift test --skip-build --filter RequestSequencerTests`.
@Suite("RequestSequencerTests") struct RequestSequencerTests {
    @Test func requestAfterRegisterWaitsForItAndLaterOnesShareTheCluster() async throws {
        let sequencer = RequestSequencer()
        let register = sequencer.enter(.clusterLifecycle("a"))
        let put = sequencer.enter(.cluster("a"))
        let get = sequencer.enter(.cluster("a"))
        let other = sequencer.enter(.cluster("b"))
        let independent = sequencer.enter(.independent)
        let started = Recorder<String>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (name, ticket) in [("put", put), ("get", get), ("other", other), ("independent", independent)] {
                group.addTask {
                    await sequencer.wait(for: ticket)
                    started.append(name)
                    sequencer.finish(ticket)
                }
            }
            // Other clusters and independent requests never wait for "a"'s register.
            try await eventually("independent requests started") { Set(started.all) == ["other", "independent"] }
            sequencer.finish(register)
            try await group.waitForAll()
        }
        #expect(Set(started.all) == ["put", "get", "other", "independent"])
        #expect(sequencer.activeLaneCount == 0)
    }

    @Test func unregisterWaitsForEveryEarlierRequestOfItsCluster() async throws {
        let sequencer = RequestSequencer()
        let put = sequencer.enter(.cluster("a"))
        let get = sequencer.enter(.cluster("a"))
        let unregister = sequencer.enter(.clusterLifecycle("a"))
        let register = sequencer.enter(.clusterLifecycle("a"))
        let after = sequencer.enter(.cluster("a"))
        let started = Recorder<String>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (name, ticket) in [("unregister", unregister), ("register", register), ("after", after)] {
                group.addTask {
                    await sequencer.wait(for: ticket)
                    started.append(name)
                    sequencer.finish(ticket)
                }
            }
            started.append("get done")
            sequencer.finish(get)
            started.append("put done")
            sequencer.finish(put)
            try await group.waitForAll()
        }
        #expect(started.all == ["get done", "put done", "unregister", "register", "after"])
        #expect(sequencer.activeLaneCount == 0)
    }

    @Test func finishedLanesAreDropped() {
        let sequencer = RequestSequencer()
        for index in 0..<1000 {
            let ticket = sequencer.enter(index.isMultiple(of: 2) ? .cluster("c\(index)") : .clusterLifecycle("c\(index)"))
            sequencer.finish(ticket)
        }
        #expect(sequencer.activeLaneCount == 0)
    }
}
