import GuildNetCore
import Testing

@testable import GuildNetSettings

struct SchemaRow: Sendable, CustomTestStringConvertible {
    var key: String
    var input: JSONValue
    /// `nil` means "rejected with invalid_setting".
    var expected: JSONValue?

    var testDescription: String { "\(key) ← \(input)" }
}

private let coercionTable: [SchemaRow] = [
    // strings
    SchemaRow(key: "namespace", input: "prod", expected: "prod"),
    SchemaRow(key: "namespace", input: 5, expected: nil),
    SchemaRow(key: "namespace", input: nil, expected: nil as JSONValue),
    SchemaRow(key: "name", input: ["a"], expected: nil),
    SchemaRow(key: "rethinkdb.password", input: " spaced ", expected: " spaced "),
    // booleans
    SchemaRow(key: "use_port_forward", input: true, expected: true),
    SchemaRow(key: "use_port_forward", input: "true", expected: true),
    SchemaRow(key: "use_port_forward", input: " FALSE ", expected: false),
    SchemaRow(key: "disable_api_proxy", input: "yes", expected: true),
    SchemaRow(key: "prefer_pod_proxy", input: "0", expected: false),
    SchemaRow(key: "api_proxy_force_http", input: 1, expected: true),
    SchemaRow(key: "use_port_forward", input: 2, expected: nil),
    SchemaRow(key: "use_port_forward", input: "maybe", expected: nil),
    SchemaRow(key: "use_port_forward", input: ["true"], expected: nil),
    // integers
    SchemaRow(key: "rethinkdb.port", input: 28016, expected: 28016),
    SchemaRow(key: "rethinkdb.port", input: "28016", expected: 28016),
    SchemaRow(key: "rethinkdb.port", input: 28016.0, expected: 28016),
    SchemaRow(key: "rethinkdb.port", input: 1.5, expected: nil),
    SchemaRow(key: "rethinkdb.port", input: 0, expected: nil),
    SchemaRow(key: "rethinkdb.port", input: 65536, expected: nil),
    SchemaRow(key: "rethinkdb.port", input: "abc", expected: nil),
    SchemaRow(key: "rethinkdb.port", input: true, expected: nil),
    // choices
    SchemaRow(key: "route.strategy", input: "auto", expected: "auto"),
    SchemaRow(key: "route.strategy", input: " Tailnet ", expected: "tailnet"),
    SchemaRow(key: "route.strategy", input: "kubectl-proxy", expected: "kubectl-proxy"),
    SchemaRow(key: "route.strategy", input: "socks", expected: nil),
    SchemaRow(key: "route.strategy", input: true, expected: nil),
    // string arrays
    SchemaRow(key: "ts_routes", input: ["10.0.0.0/8"], expected: ["10.0.0.0/8"]),
    SchemaRow(key: "ts_routes", input: "10.0.0.0/8, 100.64.0.0/10", expected: ["10.0.0.0/8", "100.64.0.0/10"]),
    SchemaRow(key: "ts_routes", input: "[\"a\",\"b\"]", expected: ["a", "b"]),
    SchemaRow(key: "ts_routes", input: "", expected: []),
    SchemaRow(key: "ts_routes", input: [1], expected: nil),
    SchemaRow(key: "ts_routes", input: "[1]", expected: nil),
    SchemaRow(key: "ts_routes", input: true, expected: nil),
    // host:port
    SchemaRow(key: "rethinkdb.address", input: "db:28015", expected: "db:28015"),
    SchemaRow(key: "rethinkdb.address", input: " db.svc.cluster.local:28015 ", expected: "db.svc.cluster.local:28015"),
    SchemaRow(key: "rethinkdb.address", input: "[::1]:28015", expected: "[::1]:28015"),
    SchemaRow(key: "rethinkdb.address", input: "db", expected: nil),
    SchemaRow(key: "rethinkdb.address", input: "db:0", expected: nil),
    SchemaRow(key: "rethinkdb.address", input: "db:port", expected: nil),
    SchemaRow(key: "rethinkdb.address", input: "db:+80", expected: nil),
    SchemaRow(key: "rethinkdb.address", input: ":28015", expected: nil),
    SchemaRow(key: "rethinkdb.address", input: "::1:28015", expected: nil),
    SchemaRow(key: "rethinkdb.address", input: 28015, expected: nil),
    // unknown keys keep any value
    SchemaRow(key: "custom.anything", input: ["a": 1], expected: ["a": 1]),
    SchemaRow(key: "x-y.z_1", input: [1, "two"], expected: nil),  // unknown keys are refused
    SchemaRow(key: "custom.x-y.z_1", input: [1, "two"], expected: [1, "two"]),
    SchemaRow(key: "custom.flag", input: "true", expected: "true"),
    // bad keys
    SchemaRow(key: "bad key", input: "x", expected: nil),
    SchemaRow(key: "a..b", input: "x", expected: nil),
]

@Suite("SettingsSchema")
struct SettingsSchemaTests {
    @Test("normalize coerces and validates", arguments: coercionTable)
    func normalize(row: SchemaRow) {
        do {
            let value = try SettingsSchema.normalize(row.input, forKey: row.key)
            if row.input == .null {
                #expect(value == .null)
            } else {
                #expect(value == row.expected)
            }
        } catch {
            #expect(row.expected == nil, "unexpected error: \(error)")
            #expect(error.code == .invalidSetting)
            #expect(error.message.contains(row.key))
        }
    }

    @Test(
        "valid keys",
        arguments: ["a", "rethinkdb.address", "A-b_c.D9", "api_proxy_url", String(repeating: "k", count: 128)])
    func validKeys(key: String) throws {
        try SettingsSchema.validateKey(key)
    }

    @Test(
        "invalid keys",
        arguments: ["", ".a", "a.", "a..b", "a b", "a/b", "é", "a=b", String(repeating: "k", count: 129)])
    func invalidKeys(key: String) {
        let error = hostError { try SettingsSchema.validateKey(key) }
        #expect(error?.code == .invalidSetting)
    }

    @Test("raw text from --set and the environment")
    func parseText() throws {
        let table: [(key: String, text: String, expected: JSONValue)] = [
            ("name", "123", "123"),
            ("rethinkdb.password", "1e3", "1e3"),
            ("rethinkdb.password", "true", "true"),
            ("namespace", "\"quoted\"", "quoted"),
            ("namespace", "null", "null"),
            ("rethinkdb.address", "db:28015", "db:28015"),
            ("custom.n", "5", 5),
            ("custom.d", "2.5", 2.5),
            ("custom.obj", "{\"a\":1}", ["a": 1]),
            ("custom.s", "hello world", "hello world"),
            ("custom.null", "null", nil),
            ("use_port_forward", "true", true),
            ("use_port_forward", "\"true\"", true),
            ("rethinkdb.port", "5", 5),
            ("ts_routes", "a,b", ["a", "b"]),
            ("route.strategy", "direct", "direct"),
        ]
        for row in table {
            #expect(try SettingsSchema.parse(text: row.text, forKey: row.key) == row.expected, "\(row.key)=\(row.text)")
        }
    }

    @Test("defaults and known keys")
    func defaultsAndKnown() {
        let defaults = SettingsSchema.defaults
        #expect(defaults["namespace"] == "default")
        #expect(defaults["route.strategy"] == "auto")
        #expect(defaults["rethinkdb.user"] == "admin")
        #expect(defaults["rethinkdb.service"] == "rethinkdb")
        #expect(defaults["rethinkdb.port"] == 28015)
        for flag in ["api_proxy_force_http", "disable_api_proxy", "prefer_pod_proxy", "use_port_forward"] {
            #expect(defaults[flag] == false)
        }
        #expect(defaults["rethinkdb.password"] == nil)
        #expect(defaults["api_proxy_url"] == nil)

        let keys = SettingsSchema.known.map(\.key)
        #expect(keys == keys.sorted())
        let goFields = [
            "name", "namespace", "api_proxy_url", "api_proxy_force_http", "disable_api_proxy", "prefer_pod_proxy",
            "use_port_forward", "ts_login_server", "ts_routes",
        ]
        for field in goFields + ["route.strategy", "rethinkdb.address", "rethinkdb.password", "rethinkdb.port"] {
            #expect(keys.contains(field), "\(field)")
        }
        for info in SettingsSchema.known {
            #expect(!info.summary.isEmpty)
            #expect(info.defaultValue == defaults[info.key])
        }
    }

    @Test("errors for secret keys never quote the value")
    func secretValuesStayOutOfErrors() {
        let secretInputs: [JSONValue] = [.int(987_654_321), ["hunter2-secret"], ["nested": "hunter2-secret"], .bool(true)]
        for input in secretInputs {
            let error = hostError { _ = try SettingsSchema.normalize(input, forKey: "rethinkdb.password") }
            #expect(error?.code == .invalidSetting)
            #expect(error?.message.contains("rethinkdb.password") == true)
            #expect(error?.message.contains("987654321") == false)
            #expect(error?.message.contains("hunter2") == false)
            #expect(error?.message.contains("true") == false)
        }
        // A non-secret key's error does show the value, to help the operator.
        let shown = hostError { _ = try SettingsSchema.normalize("abc", forKey: "rethinkdb.port") }
        #expect(shown?.message.contains("abc") == true)
    }

    @Test("display values redact secret keys and secret object members")
    func displayValues() {
        let secret = EffectiveSetting(key: "rethinkdb.password", value: "hunter2", layer: .cluster)
        #expect(secret.isSecret)
        #expect(secret.displayValue == SecretKeys.redacted)
        #expect(secret.value == "hunter2")

        let nested = EffectiveSetting(key: "db", value: ["host": "h", "password": "p", "list": [["token": "t"]]], layer: .global)
        #expect(!nested.isSecret)
        #expect(nested.displayValue == ["host": "h", "password": "<redacted>", "list": [["token": "<redacted>"]]])

        let plain = EffectiveSetting(key: "namespace", value: "prod", layer: .defaults)
        #expect(!plain.isSecret)
        #expect(plain.displayValue == "prod")
    }

    @Test("layer raw values")
    func layerRawValues() {
        #expect(SettingLayer.allCases == [.cli, .env, .cluster, .global, .defaults])
        #expect(SettingLayer.defaults.rawValue == "default")
    }
}
