import BenchSupport
import GuildNetCore

/// Delivery accounting for one table: the rows its writer got acknowledged and what each
/// changefeed on it reported. A row must reach every feed that was open when its write started,
/// unless that feed reported a gap (or ended) at or after the write started, or was in a gap then.
final class FeedLedger: Sendable {
    struct Row: Sendable {
        let id: String
        let startedAt: Int64
    }

    private struct Feed {
        let sub: String
        let openedAt: Int64
        var delivered: Set<String> = []
        /// (gap reported, resumed) times; resumed nil while the gap lasts.
        var gaps: [(Int64, Int64?)] = []
        var endedAt: Int64?
        var endReason: String?
        var events = 0
    }

    private struct State {
        var rows: [Row] = []
        var feeds: [Feed] = []
    }

    let table: String
    /// `--inject-defects`: the first change event is ignored, as if it had been lost.
    private let ignoreFirstChange: LockedValue<Bool>
    private let state = LockedValue(State())

    init(table: String, ignoreFirstChange: Bool = false) {
        self.table = table
        self.ignoreFirstChange = LockedValue(ignoreFirstChange)
    }

    /// A feed whose `rethink.changes` reply arrived at `at`; its events go to ``event(sub:_:)``.
    func opened(sub: String, at: Int64) {
        state.withLock { $0.feeds.append(Feed(sub: sub, openedAt: at)) }
    }

    /// A row acknowledged by the daemon, whose insert was sent at `startedAt`.
    func acknowledged(id: String, startedAt: Int64) {
        state.withLock { $0.rows.append(Row(id: id, startedAt: startedAt)) }
    }

    /// One event of feed `sub`.
    func event(sub: String, _ event: JSONValue) {
        let now = Bench.nowNanos()
        state.withLock { state in
            guard let index = state.feeds.lastIndex(where: { $0.sub == sub }) else { return }
            state.feeds[index].events += 1
            switch event["type"]?.stringValue {
            case "change":
                if ignoreFirstChange.withLock({ ignore in
                    defer { ignore = false }
                    return ignore
                }) {
                    return
                }
                if let id = event["new_val"]?["id"]?.stringValue { state.feeds[index].delivered.insert(id) }
            case "gap":
                state.feeds[index].gaps.append((now, nil))
            case "resumed":
                if let last = state.feeds[index].gaps.indices.last, state.feeds[index].gaps[last].1 == nil {
                    state.feeds[index].gaps[last].1 = now
                }
            case "end":
                state.feeds[index].endedAt = now
                state.feeds[index].endReason = event["reason"]?["code"]?.stringValue ?? "none"
            default:
                break
            }
        }
    }

    /// Whether the latest feed has ended (the writer then opens a new one).
    var latestFeedEnded: Bool { state.withLock { $0.feeds.last?.endedAt != nil } }

    /// The reasons feeds ended with, by code.
    var endReasons: [String] { state.withLock { $0.feeds.compactMap(\.endReason) } }

    struct Verdict: Sendable {
        var rows = 0
        var expectedDeliveries = 0
        var delivered = 0
        var coveredByGap = 0
        var lost = 0
        var lostSamples: [String] = []
        var gaps = 0
        var events = 0
        var feeds = 0

        mutating func add(_ other: Verdict) {
            rows += other.rows
            expectedDeliveries += other.expectedDeliveries
            delivered += other.delivered
            coveredByGap += other.coveredByGap
            lost += other.lost
            lostSamples += other.lostSamples.prefix(max(0, 10 - lostSamples.count))
            gaps += other.gaps
            events += other.events
            feeds += other.feeds
        }
    }

    func verdict() -> Verdict {
        state.withLock { state in
            var verdict = Verdict(rows: state.rows.count)
            for feed in state.feeds {
                verdict.feeds += 1
                verdict.gaps += feed.gaps.count
                verdict.events += feed.events
                for row in state.rows where row.startedAt >= feed.openedAt {
                    if let ended = feed.endedAt, ended < row.startedAt { continue }
                    verdict.expectedDeliveries += 1
                    if feed.delivered.contains(row.id) {
                        verdict.delivered += 1
                    } else if feed.endedAt != nil
                        || feed.gaps.contains(where: { gap, resumed in gap >= row.startedAt || (resumed ?? .max) >= row.startedAt })
                    {
                        verdict.coveredByGap += 1
                    } else {
                        verdict.lost += 1
                        if verdict.lostSamples.count < 10 { verdict.lostSamples.append("\(table)/\(row.id) on \(feed.sub)") }
                    }
                }
            }
            return verdict
        }
    }
}
