import GuildNetCore
import Testing

@testable import GuildNetRethink

@Suite struct ChangefeedReconcilerTests {
    static func initial(_ row: JSONValue) -> JSONValue { ["new_val": row] }
    static func change(_ old: JSONValue, _ new: JSONValue) -> JSONValue { ["old_val": old, "new_val": new] }
    static let initializing: JSONValue = ["state": "initializing"]
    static let ready: JSONValue = ["state": "ready"]

    static func feed(_ reconciler: inout ChangefeedReconciler, _ items: [JSONValue]) -> [ChangefeedEvent] {
        items.flatMap { reconciler.process($0) }
    }

    @Test func firstSubscriptionHidesInitialRowsUnlessAsked() {
        var hidden = ChangefeedReconciler(primaryKey: "id", forwardInitial: false, forwardStates: false)
        let items: [JSONValue] = [Self.initializing, Self.initial(["id": 1]), Self.ready, Self.change(nil, ["id": 2])]
        #expect(Self.feed(&hidden, items) == [.change(old: nil, new: ["id": 2])])
        #expect(hidden.mirror.count == 2)

        var shown = ChangefeedReconciler(primaryKey: "id", forwardInitial: true, forwardStates: true)
        #expect(
            Self.feed(&shown, items) == [
                .state("initializing"), .change(old: nil, new: ["id": 1]), .state("ready"), .change(old: nil, new: ["id": 2]),
            ])
    }

    @Test func resumeEmitsOnlyTheDifference() {
        var reconciler = ChangefeedReconciler(primaryKey: "id", forwardInitial: true, forwardStates: true)
        _ = Self.feed(
            &reconciler,
            [Self.initializing, Self.initial(["id": 1, "v": 1]), Self.initial(["id": 2, "v": 1]), Self.initial(["id": 3]), Self.ready])
        // During the gap: 1 unchanged, 2 updated, 3 deleted, 4 inserted.
        reconciler.beginResume()
        let events = Self.feed(
            &reconciler,
            [Self.initializing, Self.initial(["id": 1, "v": 1]), Self.initial(["id": 2, "v": 2]), Self.initial(["id": 4]), Self.ready])
        #expect(
            events == [
                .change(old: ["id": 2, "v": 1], new: ["id": 2, "v": 2]),
                .change(old: nil, new: ["id": 4]),
                .change(old: ["id": 3], new: nil),
                .resumed,
            ])
        // Live changes after the resume pass through and keep the mirror current.
        #expect(Self.feed(&reconciler, [Self.change(["id": 4], nil)]) == [.change(old: ["id": 4], new: nil)])
        #expect(Set(reconciler.mirror.keys) == [1, 2])
    }

    @Test func changesDuringResumeInitializationAreNotDuplicated() {
        var reconciler = ChangefeedReconciler(primaryKey: "k", forwardInitial: false, forwardStates: false)
        _ = Self.feed(&reconciler, [Self.initializing, Self.initial(["k": "a"]), Self.initial(["k": "b"]), Self.ready])
        reconciler.beginResume()
        let events = Self.feed(
            &reconciler,
            [
                Self.initializing, Self.change(["k": "a"], ["k": "a", "x": 1]), Self.initial(["k": "a", "x": 1]),
                Self.change(["k": "b"], nil), Self.ready,
            ])
        #expect(events == [.change(old: ["k": "a"], new: ["k": "a", "x": 1]), .change(old: ["k": "b"], new: nil), .resumed])
    }

    @Test func atomFeedOfAMissingDocument() {
        var reconciler = ChangefeedReconciler(primaryKey: "id", forwardInitial: true, forwardStates: false)
        #expect(Self.feed(&reconciler, [Self.initializing, ["new_val": nil], Self.ready]).isEmpty)
        #expect(Self.feed(&reconciler, [Self.change(nil, ["id": 9])]) == [.change(old: nil, new: ["id": 9])])
    }

    @Test func rowsWithoutThePrimaryKeyAreKeyedByValue() {
        var reconciler = ChangefeedReconciler(primaryKey: "id", forwardInitial: false, forwardStates: false)
        _ = Self.feed(&reconciler, [Self.initial(["a": 1]), Self.ready])
        reconciler.beginResume()
        #expect(Self.feed(&reconciler, [Self.initial(["a": 1]), Self.ready]) == [.resumed])
    }

    /// JSON null old/new values become a missing row, never `.some(.null)`.
    @Test func nullValuesAreMissingRows() {
        var reconciler = ChangefeedReconciler(primaryKey: "id", forwardInitial: true, forwardStates: false)
        _ = reconciler.process(Self.ready)
        let events = reconciler.process(.object(["old_val": .null, "new_val": ["id": 1]]))
        guard case .change(let old, let new)? = events.first else {
            Issue.record("expected a change, got \(events)")
            return
        }
        #expect(old == Optional<JSONValue>.none)
        #expect(new == .some(["id": 1]))
        let deleted = reconciler.process(.object(["old_val": ["id": 1], "new_val": .null]))
        guard case .change(_, let gone)? = deleted.first else {
            Issue.record("expected a change, got \(deleted)")
            return
        }
        #expect(gone == Optional<JSONValue>.none)
    }

    @Test func ignoresUnknownDocuments() {
        var reconciler = ChangefeedReconciler(primaryKey: "id", forwardInitial: true, forwardStates: true)
        #expect(Self.feed(&reconciler, [3, ["error": "x"], Self.change(nil, nil)]).isEmpty)
    }
}
