import GuildNetCore
import GuildNetSettings
import Testing

@Suite("Strict settings keys")
struct StrictSettingsTests {
    static func refusal(_ key: String, _ value: JSONValue = "x") -> HostError? {
        do {
            _ = try SettingsSchema.normalize(value, forKey: key)
            return nil
        } catch {
            return error
        }
    }

    @Test(
        "a typo'd key is refused with the closest known key",
        arguments: [
            ("rethinkdb.adress", "rethinkdb.address"), ("rethinkdb.pasword", "rethinkdb.password"),
            ("kube.qsp", "kube.qps"), ("namespce", "namespace"), ("route.stratgy", "route.strategy"),
        ])
    func typo(key: String, suggestion: String) throws {
        let error = try #require(Self.refusal(key, "s3cret-value"))
        #expect(error.code == .invalidSetting)
        #expect(error.message.contains("unknown setting \"\(key)\""))
        #expect(error.message.contains("did you mean \"\(suggestion)\"?"))
        #expect(!error.message.contains("s3cret-value"), "the value of an unknown key is never quoted")
    }

    @Test("a key far from every known key gets no suggestion, only the custom. hint")
    func farKey() throws {
        let error = try #require(Self.refusal("colour"))
        #expect(!error.message.contains("did you mean"))
        #expect(error.message.contains("\"custom.\""))
        #expect(throws: HostError.self) { try SettingsSchema.parse(text: "1", forKey: "rethinkdb.adress") }
    }

    @Test("free-form keys live under custom.; their secrecy follows their name")
    func customKeys() throws {
        #expect(try SettingsSchema.normalize(["a": 1], forKey: "custom.team") == ["a": 1])
        #expect(!SettingsSchema.isSecret("custom.team"))
        #expect(SettingsSchema.isSecret("custom.api_token"))
        #expect(SettingsSchema.isSecret("rethinkdb.password"))
        // Secrecy of known keys is declared, not guessed from words.
        #expect(!SettingsSchema.isSecret("rethinkdb.user"))
        #expect(EffectiveSetting(key: "custom.api_token", value: "t", layer: .cluster).displayValue == "<redacted>")
    }

    @Test("every known key reads as its Swift type with its schema default")
    func typedDefaults() {
        let defaults = SettingsSchema.defaults
        #expect(defaults["kube.qps"] == 50)
        #expect(defaults["rethinkdb.user"] == "admin")
        #expect(defaults["rethinkdb.password"] == nil)
        #expect(Set(SettingsSchema.known.map(\.key)).isSuperset(of: defaults.keys))
    }
}
