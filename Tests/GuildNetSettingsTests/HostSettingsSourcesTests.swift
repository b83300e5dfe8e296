import GuildNetCore
import Testing

@testable import GuildNetSettings

@Suite("HostSettingsSources")
struct HostSettingsSourcesTests {
    // MARK: Environment names

    @Test("environment names map to keys and back")
    func environmentNameMapping() {
        let pairs: [(key: String, name: String)] = [
            ("rethinkdb.address", "GUILDNET_SETTING_RETHINKDB__ADDRESS"),
            ("api_proxy_url", "GUILDNET_SETTING_API_PROXY_URL"),
            ("namespace", "GUILDNET_SETTING_NAMESPACE"),
            ("route.strategy", "GUILDNET_SETTING_ROUTE__STRATEGY"),
            ("a.b.c", "GUILDNET_SETTING_A__B__C"),
            ("ts_routes", "GUILDNET_SETTING_TS_ROUTES"),
        ]
        for pair in pairs {
            #expect(HostSettingsSources.environmentName(forKey: pair.key) == pair.name)
            #expect(HostSettingsSources.key(forEnvironmentName: pair.name) == pair.key)
        }
        #expect(HostSettingsSources.key(forEnvironmentName: "HOME") == nil)
        #expect(HostSettingsSources.key(forEnvironmentName: "GUILDNET_SETTINGS") == nil)
        #expect(HostSettingsSources.key(forEnvironmentName: "GUILDNET_SETTING_A___B") == "a._b")
    }

    @Test("the environment contributes only GUILDNET_SETTING_* variables, coerced by the schema")
    func environmentLayer() throws {
        let sources = try HostSettingsSources.load(
            cliAssignments: [],
            environment: [
                "HOME": "/root",
                "PATH": "/usr/bin",
                "GUILDNET_SETTING_RETHINKDB__ADDRESS": "db:28015",
                "GUILDNET_SETTING_USE_PORT_FORWARD": "true",
                "GUILDNET_SETTING_RETHINKDB__PORT": "28016",
                "GUILDNET_SETTING_CUSTOM__OBJ": "{\"a\":1}",
                "GUILDNET_SETTING_CUSTOM__UNSET": "null",
            ],
            envFile: nil,
            configFile: nil)
        #expect(
            sources.env == [
                "rethinkdb.address": "db:28015",
                "use_port_forward": true,
                "rethinkdb.port": 28016,
                "custom.obj": ["a": 1],
            ])
        #expect(sources.cli.isEmpty)
        #expect(sources.global.isEmpty)
    }

    @Test("bad environment variables are reported by name")
    func badEnvironment() {
        let invalidValue = hostError {
            _ = try HostSettingsSources.load(
                cliAssignments: [], environment: ["GUILDNET_SETTING_USE_PORT_FORWARD": "maybe"], envFile: nil, configFile: nil)
        }
        #expect(invalidValue?.code == .invalidSetting)
        #expect(invalidValue?.message.contains("GUILDNET_SETTING_USE_PORT_FORWARD") == true)

        let invalidKey = hostError {
            _ = try HostSettingsSources.load(
                cliAssignments: [], environment: ["GUILDNET_SETTING_": "x"], envFile: nil, configFile: nil)
        }
        #expect(invalidKey?.code == .invalidSetting)

        let clash = hostError {
            _ = try HostSettingsSources.load(
                cliAssignments: [], environment: ["GUILDNET_SETTING_FOO": "1", "GUILDNET_SETTING_foo": "2"], envFile: nil,
                configFile: nil)
        }
        #expect(clash?.code == .invalidSetting)
    }

    // MARK: --set

    @Test("--set values are JSON when they parse, strings otherwise")
    func setAssignments() throws {
        let sources = try HostSettingsSources.load(
            cliAssignments: [
                "namespace=prod",
                "use_port_forward=true",
                "rethinkdb.port=28016",
                "custom.n=5",
                "custom.obj={\"a\":1}",
                "custom.text=hello world",
                "custom.eq=a=b",
                "custom.empty=",
                "name=123",
                "ts_routes=10.0.0.0/8,100.64.0.0/10",
                "custom.later=1",
                "custom.later=2",
            ],
            environment: [:], envFile: nil, configFile: nil)
        #expect(
            sources.cli == [
                "namespace": "prod",
                "use_port_forward": true,
                "rethinkdb.port": 28016,
                "custom.n": 5,
                "custom.obj": ["a": 1],
                "custom.text": "hello world",
                "custom.eq": "a=b",
                "custom.empty": "",
                "name": "123",
                "ts_routes": ["10.0.0.0/8", "100.64.0.0/10"],
                "custom.later": 2,
            ])
    }

    @Test("bad --set assignments are rejected by name", arguments: ["namespace", "=value", "bad key=1", "use_port_forward=maybe"])
    func badAssignment(assignment: String) {
        let error = hostError {
            _ = try HostSettingsSources.load(cliAssignments: [assignment], environment: [:], envFile: nil, configFile: nil)
        }
        #expect(error?.code == .invalidSetting)
        #expect(error?.message.contains("--set") == true)
    }

    @Test("an assignment without '=' that may hold a credential is not echoed")
    func secretAssignmentNotEchoed() {
        let error = hostError {
            _ = try HostSettingsSources.load(
                cliAssignments: ["rethinkdb.password:hunter2-secret"], environment: [:], envFile: nil, configFile: nil)
        }
        #expect(error?.code == .invalidSetting)
        #expect(error?.message.contains("hunter2") == false)
    }

    // MARK: --env-file

    @Test("env files: comments, blank lines, optional quotes, export; the process environment wins")
    func envFile() async throws {
        try await withTemporaryDirectory { dir in
            let path = dir + "/host.env"
            try writeFile(
                path,
                """
                # GuildNet host settings

                GUILDNET_SETTING_NAMESPACE=from-file
                GUILDNET_SETTING_API_PROXY_URL="https://proxy.example:8443"
                GUILDNET_SETTING_TS_LOGIN_SERVER='https://hs.example'
                export GUILDNET_SETTING_USE_PORT_FORWARD=true
                  GUILDNET_SETTING_RETHINKDB__USER = spaced   \r
                GUILDNET_SETTING_CUSTOM__QUOTED="say \\"hi\\""
                GUILDNET_SETTING_RETHINKDB__SERVICE=first
                GUILDNET_SETTING_RETHINKDB__SERVICE=second
                OTHER_TOOL_SETTING=ignored

                """)
            let sources = try HostSettingsSources.load(
                cliAssignments: [],
                environment: ["GUILDNET_SETTING_NAMESPACE": "from-process"],
                envFile: path,
                configFile: nil)
            #expect(
                sources.env == [
                    "namespace": "from-process",
                    "api_proxy_url": "https://proxy.example:8443",
                    "ts_login_server": "https://hs.example",
                    "use_port_forward": true,
                    "rethinkdb.user": "spaced",
                    "custom.quoted": "say \"hi\"",
                    "rethinkdb.service": "second",
                ])
        }
    }

    @Test("env file errors name the file and line, not the content")
    func envFileErrors() async throws {
        try await withTemporaryDirectory { dir in
            let path = dir + "/bad.env"
            try writeFile(path, "# ok\nGUILDNET_SETTING_NAMESPACE=x\nthis line has no equals hunter2\n")
            let error = hostError {
                _ = try HostSettingsSources.load(cliAssignments: [], environment: [:], envFile: path, configFile: nil)
            }
            #expect(error?.code == .invalidSetting)
            #expect(error?.message.contains(path) == true)
            #expect(error?.message.contains("line 3") == true)
            #expect(error?.message.contains("hunter2") == false)

            let missing = hostError {
                _ = try HostSettingsSources.load(
                    cliAssignments: [], environment: [:], envFile: dir + "/missing.env", configFile: nil)
            }
            #expect(missing?.code == .io)
            #expect(missing?.message.contains("missing.env") == true)
        }
    }

    // MARK: --config

    @Test("the host config file's settings object is the global layer")
    func configFile() async throws {
        try await withTemporaryDirectory { dir in
            let path = dir + "/host.json"
            try writeFile(
                path,
                #"{"settings": {"namespace": "global-ns", "use_port_forward": "true", "rethinkdb.port": 29015, "custom.x": [1], "custom.unset": null}}"#)
            let sources = try HostSettingsSources.load(cliAssignments: [], environment: [:], envFile: nil, configFile: path)
            #expect(sources.global == ["namespace": "global-ns", "use_port_forward": true, "rethinkdb.port": 29015, "custom.x": [1]])

            let empty = dir + "/empty.json"
            try writeFile(empty, "{}")
            #expect(try HostSettingsSources.load(cliAssignments: [], environment: [:], envFile: nil, configFile: empty).global.isEmpty)
        }
    }

    @Test(
        "host config file errors",
        arguments: [
            ("{not json", "not valid JSON"),
            ("[1, 2]", "object"),
            (#"{"settings": {}, "listen": ":8080"}"#, "\"listen\""),
            (#"{"settings": ["namespace"]}"#, "\"settings\" must be an object"),
            (#"{"settings": "x"}"#, "\"settings\" must be an object"),
            (#"{"settings": {"bad key": 1}}"#, "bad key"),
            (#"{"settings": {"rethinkdb.port": "abc"}}"#, "rethinkdb.port"),
        ])
    func configFileErrors(contents: String, mentions: String) async throws {
        try await withTemporaryDirectory { dir in
            let path = dir + "/host.json"
            try writeFile(path, contents)
            let error = hostError {
                _ = try HostSettingsSources.load(cliAssignments: [], environment: [:], envFile: nil, configFile: path)
            }
            #expect(error?.code == .configInvalid)
            #expect(error?.message.contains(path) == true)
            #expect(error?.message.contains(mentions) == true, "\(error?.message ?? "no error")")
        }
    }

    @Test("config file errors never quote a secret value; unreadable files are io errors")
    func configFileSecretsAndIO() async throws {
        try await withTemporaryDirectory { dir in
            let path = dir + "/host.json"
            try writeFile(path, #"{"settings": {"rethinkdb.password": ["s3cr3t-value"]}}"#)
            let error = hostError {
                _ = try HostSettingsSources.load(cliAssignments: [], environment: [:], envFile: nil, configFile: path)
            }
            #expect(error?.code == .configInvalid)
            #expect(error?.message.contains("rethinkdb.password") == true)
            #expect(error?.message.contains("s3cr3t") == false)

            let missing = hostError {
                _ = try HostSettingsSources.load(cliAssignments: [], environment: [:], envFile: nil, configFile: dir + "/nope.json")
            }
            #expect(missing?.code == .io)

            let directory = hostError {
                _ = try HostSettingsSources.load(cliAssignments: [], environment: [:], envFile: nil, configFile: dir)
            }
            #expect(directory?.code == .io)
        }
    }
}
