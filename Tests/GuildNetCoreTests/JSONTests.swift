import GuildNetCore
import Testing

@Suite("JSON parser and writer")
struct JSONTests {
    @Test(
        "valid documents",
        arguments: [
            ("{}", JSONValue.object([:])),
            ("[]", .array([])),
            (" {\"a\" : [1, -2, 3.5, true, false, null, \"x\"]} ", JSONValue.object(["a": [1, -2, 3.5, true, false, nil, "x"]])),
            ("\"\\u00e9\\n\\t\\\"\\\\\\/\"", "é\n\t\"\\/"),
            ("\"\\ud83d\\ude80\"", "🚀"),
            ("1e3", .double(1000)),
            ("-0", .int(0)),
            ("9223372036854775807", .int(Int64.max)),
            ("92233720368547758070", .double(9.2233720368547758e19)),
        ])
    func valid(text: String, expected: JSONValue) throws {
        #expect(try JSONParser.parse(text) == expected)
    }

    @Test(
        "invalid documents are errors, never traps",
        arguments: [
            "", " ", "{", "}", "[1,]", "{\"a\":}", "{\"a\" 1}", "{a:1}", "01", "1.", "-", "+1", ".5", "1e", "tru", "nul",
            "\"unterminated", "\"bad \\x escape\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\u12\"", "[1] 2", "\u{7}", "\"a\u{1}b\"",
            "1e999",
        ])
    func invalid(text: String) {
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse(text) }
    }

    @Test("invalid UTF-8 is rejected")
    func invalidUTF8() {
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse([0x22, 0xFF, 0xFE, 0x22]) }
    }

    @Test("nesting is limited")
    func depth() throws {
        let ok = String(repeating: "[", count: JSONParser.maxDepth) + String(repeating: "]", count: JSONParser.maxDepth)
        _ = try JSONParser.parse(ok)
        let deep = String(repeating: "[", count: 100_000)
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse(deep) }
    }

    @Test("writer output parses back to the same value, with sorted keys")
    func roundTrip() throws {
        let value: JSONValue = ["z": 1, "a": ["s": "quote\" backslash\\ nl\n ctl\u{1} é 🚀"], "m": [1.5, nil, true, -7]]
        let text = value.jsonString
        #expect(text.hasPrefix("{\"a\":"))
        #expect(text.contains("\\u0001"))
        #expect(try JSONParser.parse(text) == value)
    }
}

@Suite("Backoff and secrets")
struct BackoffAndSecretsTests {
    @Test("backoff grows, caps and stays within its jitter band")
    func backoff() {
        let backoff = Backoff(initial: .milliseconds(100), multiplier: 2, cap: .seconds(1), jitter: 0.5)
        #expect(backoff.baseDelay(attempt: 0) == .milliseconds(100))
        #expect(backoff.baseDelay(attempt: 1) == .milliseconds(200))
        #expect(backoff.baseDelay(attempt: 3) == .milliseconds(800))
        #expect(backoff.baseDelay(attempt: 4) == .seconds(1))
        #expect(backoff.baseDelay(attempt: 1000) == .seconds(1))
        for attempt in 0..<10 {
            let delay = backoff.delay(attempt: attempt)
            let base = backoff.baseDelay(attempt: attempt)
            #expect(delay >= base && delay < base * 1.5 + .milliseconds(1))
        }
    }

    @Test(
        "secret keys",
        arguments: [
            ("rethinkdb.password", true), ("api_token", true), ("ts_client_auth", true), ("tls.private_key", true),
            ("kubeconfig", true), ("db.secret", true), ("namespace", false), ("api_proxy_url", false),
            ("rethinkdb.address", false), ("use_port_forward", false), ("keyboard", false), ("monkey", false),
        ])
    func secrets(key: String, secret: Bool) {
        #expect(SecretKeys.isSecret(key) == secret)
    }
}
