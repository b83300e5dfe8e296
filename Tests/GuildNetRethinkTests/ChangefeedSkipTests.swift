import GuildNetCore
import Testing

@testable import GuildNetRethink

/// How a feed recognizes RethinkDB's skip notice and paces repeated skip-resumes.
@Suite struct ChangefeedSkipTests {
    @Test func recognizesOnlyTheServersSkipNotice() {
        let notice: JSONValue = ["error": "Changefeed cache over array size limit, skipped 15 elements."]
        #expect(ChangefeedWorker.skipNotice(notice) == "Changefeed cache over array size limit, skipped 15 elements.")
        #expect(ChangefeedWorker.skipNotice(["error": "something else"]) == nil)
        #expect(ChangefeedWorker.skipNotice(["error": "Changefeed cache over array size limit", "new_val": 1]) == nil)
        #expect(ChangefeedWorker.skipNotice(["new_val": ["id": 1], "old_val": .null]) == nil)
        #expect(ChangefeedWorker.skipNotice("Changefeed cache over array size limit") == nil)
    }

    @Test func skipsCloseTogetherFormAStreakThatAQuietWindowEnds() {
        var streak = SkipStreak(window: .seconds(30))
        let start = ContinuousClock.now
        #expect(streak.record(at: start) == 0)
        #expect(streak.record(at: start + .seconds(1)) == 1)
        #expect(streak.record(at: start + .seconds(20)) == 2)
        // 30 s after the last one: a new streak.
        #expect(streak.record(at: start + .seconds(50)) == 0)
        #expect(streak.record(at: start + .seconds(51)) == 1)
    }

    @Test func aSkipResumesLikeAConnectionLoss() {
        #expect(ChangefeedWorker.resumesAfter(RethinkError.feedSkipped(message: "m").hostError))
        #expect(ChangefeedWorker.resumesAfter(RethinkError.connectionLost(reason: "r").hostError))
        #expect(!ChangefeedWorker.resumesAfter(RethinkError.schemaMissing(message: "m").hostError))
        #expect(RethinkError.feedSkipped(message: "m").hostError.transient)
    }
}
