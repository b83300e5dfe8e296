import GuildNetCore

/// A thread-safe list that concurrent test tasks append to.
public final class Recorder<Element: Sendable>: Sendable {
    private let items = LockedValue<[Element]>([])

    public init() {}

    public func append(_ item: Element) { items.withLock { $0.append(item) } }

    public var all: [Element] { items.withLock { $0 } }
}
