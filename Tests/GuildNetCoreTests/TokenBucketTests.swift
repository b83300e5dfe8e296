import GuildNetCore
import Testing

@Suite("TokenBucket")
struct TokenBucketTests {
    @Test("a burst passes at once, then callers wait for their tokens")
    func burstThenWait() async throws {
        let bucket = TokenBucket(rate: 5, burst: 3)
        var waited = 0
        for _ in 0..<4 {
            if try await bucket.acquire() { waited += 1 }
        }
        // Three tokens in the bucket; the fourth is due 200 ms later.
        #expect(waited == 1)
    }

    @Test("taking several tokens at once counts them all")
    func severalTokens() async throws {
        let bucket = TokenBucket(rate: 1_000, burst: 100)
        #expect(try await bucket.acquire(100) == false)
        // The bucket is empty: ten more tokens are due 10 ms later.
        #expect(try await bucket.acquire(10) == true)
    }

    @Test("a rate of zero never limits")
    func unlimited() async throws {
        let bucket = TokenBucket(rate: 0, burst: 1)
        #expect(!bucket.isLimiting)
        for _ in 0..<100 { #expect(try await bucket.acquire(1_000) == false) }
    }

    @Test("a cancelled wait gives its tokens back")
    func cancelledWaitReturnsTokens() async throws {
        // One token per 100 s: however late the waiter runs on a loaded machine, it must wait.
        let bucket = TokenBucket(rate: 0.01, burst: 1)
        try await bucket.acquire()
        let waiter = Task { try await bucket.acquire() }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        // Without the refund the bucket would owe one token (about -1); with it, it is near 0.
        #expect(bucket.availableTokens > -0.5)
    }
}
