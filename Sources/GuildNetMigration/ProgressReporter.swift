import Foundation

/// Progress of a long pass, on standard error: a bar with rate and ETA redrawn in place when
/// stderr is a terminal, otherwise plain lines at most once per second or per 10 % step.
final class ProgressReporter {
    enum Mode: Sendable {
        case automatic
        case quiet
    }

    private let label: String
    private let total: Int
    private let enabled: Bool
    private let terminal: Bool
    private let started = ContinuousClock.now
    private var lastPrint = ContinuousClock.now
    private var lastStep = 0
    private var done = 0

    init(label: String, total: Int, mode: Mode) {
        self.label = label
        self.total = max(total, 1)
        enabled = mode == .automatic && total > 0
        terminal = isatty(2) == 1
    }

    /// Counts `count` more items done.
    func advance(by count: Int = 1) {
        done += count
        guard enabled, done & 1023 == 0 || done == total else { return }
        let now = ContinuousClock.now
        let step = done * 10 / total
        if terminal {
            if now - lastPrint >= .milliseconds(100) { draw(now) }
        } else if now - lastPrint >= .seconds(1) || step > lastStep {
            draw(now)
        }
        lastStep = step
    }

    func finish() {
        guard enabled else { return }
        draw(ContinuousClock.now)
        if terminal { emit("\n") }
    }

    private func draw(_ now: ContinuousClock.Instant) {
        lastPrint = now
        let elapsed = max(Self.seconds(now - started), 0.001)
        let rate = Double(done) / elapsed
        let remaining = rate > 0 ? Double(total - done) / rate : 0
        let percent = min(100, done * 100 / total)
        let figures = "\(done)/\(total) keys, \(Int(rate)) keys/s, ETA \(Self.duration(remaining))"
        if terminal {
            let width = 30
            let filled = min(width, done * width / total)
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            emit("\r\(label) [\(bar)] \(percent)% \(figures)\u{1B}[K")
        } else {
            emit("\(label): \(percent)% \(figures)\n")
        }
    }

    private func emit(_ text: String) {
        let bytes = Array(text.utf8)
        bytes.withUnsafeBytes { _ = write(2, $0.baseAddress, $0.count) }
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    static func duration(_ seconds: Double) -> String {
        let total = Int(seconds.rounded(.up))
        return total >= 60 ? "\(total / 60)m\(total % 60)s" : "\(total)s"
    }
}
