import Foundation
import GuildNetControl
import GuildNetCore
import TestSupport
import Testing

@Suite("docs/control-protocol.md")
struct ControlProtocolDocTests {
    struct Example {
        var line: Int
        var request: String
        var reply: String
    }

    static func examples() throws -> [Example] {
        let text = try String(contentsOfFile: Repository.root + "/docs/control-protocol.md", encoding: .utf8)
        var examples: [Example] = []
        var pending: (Int, String)?
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.hasPrefix("→ ") {
                pending = (number + 1, String(line.dropFirst(2)))
            } else if line.hasPrefix("← "), let (requestLine, request) = pending {
                examples.append(Example(line: requestLine, request: request, reply: String(line.dropFirst(2))))
                pending = nil
            }
        }
        return examples
    }

    @Test("every example in the reference gives the documented reply, in order")
    func replay() async throws {
        let examples = try Self.examples()
        #expect(examples.count >= 25)
        let dir = TemporaryDirectory("doc")
        defer { dir.remove() }
        let shutdowns = Recorder<Bool>()
        try await withRunningHost(stateDirectory: dir.path) { host in
            let dispatcher = ControlDispatcher(host: host, logger: host.configuration.logger, requestShutdown: { shutdowns.append(true) })
            for example in examples {
                let (replyBytes, after) = await dispatcher.respond(to: Array(example.request.utf8))
                after?()
                let actual = try JSONParser.parse(replyBytes)
                let expected = try JSONParser.parse(example.reply)
                let difference = JSONPattern.mismatch(expected: expected, actual: actual)
                #expect(difference == nil, "docs/control-protocol.md:\(example.line): \(difference ?? "")\n  got: \(actual.jsonString)")
            }
        }
        #expect(shutdowns.all == [true])
    }
}
