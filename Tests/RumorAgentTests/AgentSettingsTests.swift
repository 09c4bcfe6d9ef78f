import Foundation
import RumorAgent
import Testing

/// Config files, precedence and `--print-config`: `ConfigFile`, `ResolvedSettings`,
/// `EffectiveConfiguration`.
struct AgentSettingsTests {
    private func problem(_ text: String, path: String = "rumor.toml") -> AgentError? {
        do {
            _ = try ConfigFile.parse(text, path: path)
            return nil
        } catch {
            #expect(error.code == .badConfig && !error.hint.isEmpty)
            return error
        }
    }

    @Test func aTOMLFileGivesEveryKindOfSetting() throws {
        let values = try ConfigFile.parse(
            """
            name = "n1"
            join = ["10.0.0.1:7946", "10.0.0.2:7946"]
            encrypt_verify_incoming = false
            direct_push_limit = 32
            tombstone_grace = "12h"

            [tags]
            role = "worker"
            zone = "b"
            """, path: "rumor.toml")
        #expect(values["name"] == .text("n1"))
        #expect(values["join"] == .list(["10.0.0.1:7946", "10.0.0.2:7946"]))
        #expect(values["encrypt_verify_incoming"] == .text("false"))
        #expect(values["direct_push_limit"] == .text("32"))
        #expect(values["tombstone_grace"] == .text("12h"))
        #expect(values["tags"] == .list(["role=worker", "zone=b"]))
    }

    @Test func aJSONFileGivesTheSameSettings() throws {
        let toml = try ConfigFile.parse(#"name = "n1"\#njoin = ["a:1"]\#ndirect_push_limit = 8\#ntags = { role = "w" }"#, path: "a.toml")
        let json = try ConfigFile.parse(#"{"name": "n1", "join": ["a:1"], "direct_push_limit": 8, "tags": {"role": "w"}}"#, path: "a.json")
        #expect(toml == json)
    }

    @Test func unknownKeysAreRefusedWithASuggestion() {
        let error = problem(#"bnd = "0.0.0.0:7946""#)
        #expect(error?.message.contains("rumor.toml") == true && error?.message.contains("'bnd'") == true)
        #expect(error?.hint.contains("did you mean 'bind'") == true)
        #expect(problem(#"{"colour": "blue"}"#, path: "a.json")?.hint.contains("did you mean") == false)
    }

    @Test func wrongTypesAreRefusedNamingTheKeyAndTheFile() {
        #expect(problem(#"join = "10.0.0.1:7946""#)?.message == "config file rumor.toml: join must be an array of strings, not a string")
        #expect(problem("join = [1, 2]")?.message.contains("join must be an array of strings") == true)
        #expect(problem(#"direct_push_limit = "64""#)?.message.contains("direct_push_limit must be an integer, not a string") == true)
        #expect(problem(#"encrypt_verify_incoming = "false""#)?.message.contains("must be a boolean") == true)
        #expect(problem("name = 1.5")?.message.contains("name must be a string, not a floating-point number") == true)
        #expect(problem("tags = { port = 80 }")?.message.contains("tags must be a table of strings") == true)
        #expect(problem(#"{"name": null}"#, path: "a.json")?.message.contains("not null") == true)
        #expect(problem(#"{"name": true}"#, path: "a.json")?.message.contains("not a boolean") == true)
    }

    @Test func malformedFilesSayWhere() {
        #expect(problem("name = \n")?.message.contains("line 1") == true)
        #expect(problem(#"{"name": "n1","#, path: "a.json")?.message.contains("not a JSON object") == true)
        #expect(throws: AgentError.self) { try ConfigFile.load("/nonexistent/rumor.toml") }
    }

    @Test func flagsBeatEnvironmentBeatsFileBeatsDefaults() {
        let file = (path: "rumor.toml", values: ["name": SettingValue.text("file"), "swarm": .text("file"), "bind": .text("file:1")])
        let settings = ResolvedSettings(
            flags: ["name": .text("flag")], environment: ["RUMOR_NAME": "env", "RUMOR_SWARM": "env", "RUMOR_BIND": ""],
            file: file)
        #expect(settings.entry("name")?.source == .flag && settings.text("name") == "flag")
        #expect(settings.entry("swarm")?.source == .environment && settings.text("swarm") == "env")
        // An empty variable counts as unset.
        #expect(settings.entry("bind")?.source == .file("rumor.toml") && settings.text("bind") == "file:1")
        #expect(settings.entry("api")?.source == .defaultValue && settings.text("api") == "127.0.0.1:7373")
        #expect(settings.entry("advertise") == nil)
        #expect(settings.origin("bind") == "bind in rumor.toml" && settings.origin("swarm") == "RUMOR_SWARM")
    }

    @Test func listVariablesAreCommaSeparated() {
        let settings = ResolvedSettings(flags: [:], environment: ["RUMOR_JOIN": "a:1, b:2,", "RUMOR_TAGS": "role=w"], file: nil)
        #expect(settings.items("join") == ["a:1", "b:2"])
        #expect(settings.items("tags") == ["role=w"])
    }

    @Test func printedConfigurationIsTOMLThatReadsBackWithSecretsHidden() throws {
        let file = (path: "rumor.toml", values: ["join": SettingValue.list(["a:1"]), "tags": .list(["role=w \"x\""])])
        let settings = ResolvedSettings(
            flags: ["api_token": .text("secret"), "direct_push_limit": .text("8")], environment: [:], file: file)
        let text = EffectiveConfiguration.toml(settings, name: "host1")
        #expect(!text.contains("secret"))
        #expect(text.contains(#"name = "host1"  # default"#))
        #expect(text.contains(#"join = ["a:1"]  # file rumor.toml"#))
        #expect(text.contains("# advertise is not set"))
        let reread = try ConfigFile.parse(text, path: "printed.toml")
        #expect(reread["tags"] == .list(["role=w \"x\""]))
        #expect(reread["direct_push_limit"] == .text("8"))
        #expect(reread["api_token"] == .text(EffectiveConfiguration.hidden))
        let json = try EffectiveConfiguration.json(settings, name: "host1")
        #expect(json.contains(#""direct_push_limit""#) && json.contains(#""value":8"#) && !json.contains("secret"))
    }

    @Test func everySettingHasAFlagAndAVariableNamedAfterItsKey() {
        let setting = AgentSetting.named("data_dir")
        #expect(setting?.flag == "--data-dir" && setting?.environmentVariable == "RUMOR_DATA_DIR")
        #expect(Set(AgentSetting.all.map(\.key)).count == AgentSetting.all.count)
    }
}
