//! The answers file's JSON Schema: published beside the examples, named by
//! each of them, valid for every example and render input, and in agreement
//! with the tool: on the hostile-input table, on random values, on the
//! answers-error files and on the rules that span fields. And in a real
//! editor's language server (yaml-language-server, as VS Code's YAML
//! extension runs it): it marks each wrong line in words, and offers the keys.

use std::fs;
use std::path::Path;
use std::process::Command;

use ollama_secure::proxy::ProxyKind as Proxy;
use ollama_secure::schema::{Document, schema};

use crate::clients::installed;
use crate::hostile_input::{Field, Rng, answers_with, hostile_table, load, random_value};
use crate::support::{ROOT, Sandbox, Tool, load_config, render_inputs};

/// A schema compiled by boon, an implementation of its own (not the
/// code that wrote it).
struct Validator {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl Validator {
    fn new(document: Document) -> Validator {
        let url = format!("file:///{}", document.file_name());
        let mut compiler = boon::Compiler::new();
        compiler.add_resource(&url, schema(document)).unwrap();
        let mut schemas = boon::Schemas::new();
        let index = compiler.compile(&url, &mut schemas).unwrap_or_else(|e| panic!("the schema does not compile: {e}"));
        Validator { schemas, index }
    }

    fn check(&self, value: &serde_json::Value) -> Result<(), String> {
        self.schemas.validate(value, self.index).map_err(|e| format!("{e:#}"))
    }

    /// A YAML text as an editor sees it: `Err` when it is not YAML the
    /// schema can judge, or when the schema refuses it.
    fn check_yaml(&self, text: &str) -> Result<(), String> {
        // Through YAML's own value, which refuses a key given twice, as editors do.
        let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| format!("not YAML: {e}"))?;
        self.check(&serde_json::to_value(value).map_err(|e| format!("not JSON: {e}"))?)
    }
}

#[test]
fn the_published_schemas_are_what_the_schema_command_prints() {
    for (document, args) in
        [(Document::Answers, vec!["schema"]), (Document::WizardDefaults, vec!["schema", "--defaults"])]
    {
        let path = format!("{ROOT}/examples/{}", document.file_name());
        let published = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // The tool's own words: if this fails, `cargo run -- schema > examples/answers.schema.json`.
        Tool::new().args(&args).stdout(&published).run();
    }
}

#[test]
fn every_example_names_its_schema_and_every_example_and_render_input_is_valid() {
    let (answers, defaults) = (Validator::new(Document::Answers), Validator::new(Document::WizardDefaults));
    let examples = examples();
    for example in &examples {
        let text = fs::read_to_string(example).unwrap();
        let document =
            if example.ends_with("wizard-defaults.yaml") { Document::WizardDefaults } else { Document::Answers };
        let modeline = format!("# yaml-language-server: $schema={}", document.file_name());
        assert_eq!(
            text.lines().next(),
            Some(modeline.as_str()),
            "{}: the first line names the schema",
            example.display()
        );
        assert!(example.parent().unwrap().join(document.file_name()).is_file());
        let validator = if document == Document::Answers { &answers } else { &defaults };
        validator.check_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", example.display()));
        // The defaults file is an answers file without users: it is not one.
        if document == Document::WizardDefaults {
            assert!(answers.check_yaml(&text).is_err(), "a file without users is no answers file");
        }
    }
    for input in render_inputs() {
        let text = fs::read_to_string(&input).unwrap();
        answers.check_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        load_config(&text, "input.yaml").unwrap_or_else(|e| panic!("{}: {e}", input.display()));
    }
}

fn examples() -> Vec<std::path::PathBuf> {
    let mut examples: Vec<_> = fs::read_dir(format!("{ROOT}/examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    examples.sort();
    assert!(examples.len() >= 5, "{examples:?}");
    examples
}

fn schema_verdict(validator: &Validator, answers: &ollama_secure::answers::Answers) -> Result<(), String> {
    validator.check(&serde_json::to_value(answers).unwrap())
}

/// What only the tool judges on the table (the module comment of
/// `src/schema.rs` lists all of it): a network's bits past its prefix.
const JUDGED_BY_THE_TOOL_ALONE: &[(Field, &str)] = &[(Field::AllowFrom, "10.0.0.1/8")];

#[test]
fn the_schema_refuses_what_the_hostile_table_holds() {
    let validator = Validator::new(Document::Answers);
    let mut accepted = Vec::new();
    for (field, values) in hostile_table() {
        for proxy in [Proxy::Nginx, Proxy::Caddy] {
            for value in &values {
                let answers = answers_with(proxy, field, value);
                assert!(load(&answers).is_err(), "{field:?} = {value:?}: the tool accepts a hostile value");
                if schema_verdict(&validator, &answers).is_ok() {
                    accepted.push((proxy, field, value.clone()));
                }
            }
        }
    }
    let expected: Vec<_> = [Proxy::Nginx, Proxy::Caddy]
        .into_iter()
        .flat_map(|proxy| JUDGED_BY_THE_TOOL_ALONE.iter().map(move |(f, v)| (proxy, *f, v.to_string())))
        .collect();
    accepted.sort_by_key(|(p, f, v)| (p.name(), f.name(), v.clone()));
    let mut expected = expected;
    expected.sort_by_key(|(p, f, v)| (p.name(), f.name(), v.clone()));
    assert_eq!(accepted, expected, "the schema accepts hostile values besides those only the tool can judge");
}

/// Where the schema states the whole rule, it agrees both ways; where the
/// tool knows more (a network's stray bits, an origin's host, a duration's range, whether a
/// variable is set), the schema only never refuses what the tool accepts.
#[test]
fn on_random_values_the_schema_never_refuses_what_the_tool_accepts() {
    let validator = Validator::new(Document::Answers);
    let mut rng = Rng(0x5c4e_3a11_0dd5);
    let (mut both_accept, mut both_refuse) = (0, 0);
    for field in Field::ALL {
        let exact = !matches!(field, Field::AllowFrom | Field::Timeout | Field::PasswordEnv | Field::CorsOrigin);
        for _ in 0..300 {
            let value = random_value(&mut rng, field);
            let answers = answers_with(Proxy::Nginx, field, &value);
            let (tool, schema) = (load(&answers), schema_verdict(&validator, &answers));
            match (&tool, &schema) {
                (Ok(_), Ok(())) => both_accept += 1,
                (Err(_), Err(_)) => both_refuse += 1,
                (Ok(_), Err(why)) => {
                    panic!("{field:?} = {value:?}: the tool accepts it, the schema refuses it:\n{why}")
                }
                (Err(why), Ok(())) if exact => {
                    panic!("{field:?} = {value:?}: the schema accepts it, the tool refuses it:\n{why}")
                }
                (Err(_), Ok(())) => {}
            }
        }
    }
    // Both outcomes occur, or the agreement proves nothing.
    assert!(both_accept > 300 && both_refuse > 300, "accepted {both_accept}, refused {both_refuse}");
}

/// The wizard's `--defaults` files, as `init --defaults` checks them.
#[test]
fn the_defaults_schema_and_the_tool_agree() {
    let validator = Validator::new(Document::WizardDefaults);
    let cases = [
        ("version: 1\nport: 8443", true),
        ("proxy:\nusers:", true),
        ("caddy_source: caddy-repo\ninstall: true", true),
        ("proxy: nginx\ncaddy_source: caddy-repo", false),
        ("users: [{username: alice, generate: true}]", false),
        ("https: {enabled: true, email: ops@example.com}", true),
        ("domain: 192.0.2.1\nhttps: {enabled: true}", false),
    ];
    for (yaml, valid) in cases {
        let answers = ollama_secure::answers::Answers::from_yaml(yaml, "defaults.yaml").unwrap();
        let tool =
            ollama_secure::config::check_wizard_defaults(&answers, "defaults.yaml", ollama_secure::paths::Os::Debian);
        assert_eq!(tool.is_ok(), valid, "{yaml}\nthe tool: {tool:?}");
        let schema = validator.check_yaml(yaml);
        assert_eq!(schema.is_ok(), valid, "{yaml}\nthe schema: {schema:?}");
    }
}

#[test]
fn editors_flag_every_answers_error_file() {
    let validator = Validator::new(Document::Answers);
    let dir = Path::new(ROOT).join("tests/answers-errors");
    let mut files: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 8);
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        assert!(load_config(&text, "errors.yaml").is_err(), "{}: the tool accepts it", file.display());
        assert!(validator.check_yaml(&text).is_err(), "{}: the schema accepts it", file.display());
    }
}

/// Rules that span fields, as whole files: the tool and the schema give
/// the same verdict on each.
#[test]
fn the_schema_and_the_tool_agree_on_rules_across_fields() {
    let validator = Validator::new(Document::Answers);
    let hash = "$2y$10$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234";
    let user = "users: [{username: alice, generate: true}]";
    let cases: Vec<(String, bool)> = vec![
        (format!("proxy: nginx\n{user}"), true),
        (user.to_string(), false),
        ("proxy: nginx\nusers: []".to_string(), false),
        ("proxy: nginx".to_string(), false),
        ("proxy: nginx\nusers: [{username: alice}]".to_string(), false),
        ("proxy: nginx\nusers: [{username: alice, generate: false}]".to_string(), false),
        ("proxy: nginx\nusers: [{username: alice, generate: true, password: long-enough-password}]".to_string(), false),
        ("proxy: nginx\nusers: [{username: alice, generate: false, password: long-enough-password}]".to_string(), true),
        (format!("proxy: nginx\nusers: [{{username: alice, password_hash: '{hash}'}}]"), true),
        ("proxy: nginx\nusers: [{username: alice, password: null, generate: true}]".to_string(), true),
        ("proxy: nginx\nusers: [{generate: true}]".to_string(), false),
        ("proxy: nginx\nusers: [{username: alice, password: ''}]".to_string(), false),
        (format!("proxy: nginx\n{user}\napi_keys: [{{name: ci, generate: true}}]"), true),
        (format!("proxy: nginx\n{user}\napi_keys: [{{name: ci}}]"), false),
        (format!("proxy: nginx\n{user}\napi_keys: [{{name: ci, generate: true, key_hash: 'ab:{hash}'}}]"), false),
        (format!("proxy: nginx\n{user}\napi_keys: [{{name: ci, key_hash: 'abcdefghijkl:{hash}', role: admin}}]"), true),
        (format!("proxy: nginx\n{user}\napi_keys: [{{name: ci, generate: true, role: root}}]"), false),
        (format!("proxy: nginx\n{user}\nhttps: {{enabled: true}}"), false),
        (format!("proxy: nginx\n{user}\ndomain: ''\nhttps: {{enabled: true}}"), false),
        (format!("proxy: nginx\n{user}\ndomain: ''"), true),
        (format!("proxy: nginx\n{user}\ndomain: ollama.example.com\nhttps: {{enabled: true}}"), true),
        (format!("proxy: caddy\n{user}\ndomain: 192.0.2.1\nhttps: {{enabled: true}}"), false),
        (format!("proxy: caddy\n{user}\ndomain: 192.0.2.1"), true),
        (format!("proxy: nginx\n{user}\ndomain: a.LocalHost\nhttps: {{enabled: true}}"), false),
        (format!("proxy: nginx\n{user}\nhttps: null"), true),
        (format!("proxy: nginx\n{user}\nhttps: {{enabled: false, http_port: 99999}}"), false),
        (format!("proxy: nginx\n{user}\nhttps: {{enabled: false, email: 'not an address'}}"), false),
        (format!("proxy: nginx\n{user}\nversion: 2"), false),
        (format!("proxy: nginx\n{user}\nport: 0"), false),
        (format!("proxy: nginx\n{user}\nbcrypt_cost: 18"), false),
        (format!("proxy: nginx\n{user}\ntimeout: 1.5"), false),
        (format!("proxy: nginx\n{user}\ntimeout: 90"), true),
        (format!("proxy: nginx\n{user}\ntimeout: 1h 30m"), true),
        (format!("proxy: nginx\n{user}\ntimeout: 0"), false),
        (format!("proxy: nginx\n{user}\nban: {{after: 5, within: 10m, for: 1d}}"), true),
        (format!("proxy: nginx\n{user}\nban: {{after: 0}}"), false),
        (format!("proxy: nginx\n{user}\npaths: {{auth_socket: /run/{}.sock}}", "s".repeat(110)), false),
        (format!("proxy: nginx\n{user}\nupstream: 'https://[::1]:11434/'"), true),
        (format!("proxy: nginx\n{user}\nupstream: '::1:11434'"), false),
        (format!("proxy: nginx\n{user}\nhttps: {{enabled: false, acme_directory: 'https://::1:14000/dir'}}"), false),
        (format!("proxy: nginx\n{user}\nhttps: {{enabled: false, acme_directory: 'https://[::1]:14000/dir'}}"), true),
        (format!("proxy: nginx\n{user}\nmystery: 1"), false),
        // YAML's other spellings: a key with nothing after it, numbers and
        // booleans where text goes (serde reads the text written).
        (format!("proxy: nginx\n{user}\nversion:"), true),
        (format!("proxy: nginx\n{user}\ncaddy_source:"), true),
        (format!("proxy: nginx\n{user}\ncaddy_source: caddy-repo\ninstall: true"), false),
        (format!("proxy: caddy\n{user}\ncaddy_source: caddy-repo\ninstall: true"), true),
        (format!("proxy: caddy\n{user}\ncaddy_source: github"), false),
        ("proxy: nginx\nusers: [{username: alice, generate: true, role: }]".to_string(), true),
        (format!("proxy: nginx\n{user}\napi_keys: [{{name: ci, generate: true, role: }}]"), true),
        (format!("proxy: nginx\n{user}\nallow_from:"), true),
        (format!("proxy: nginx\n{user}\napi_keys:"), true),
        ("proxy: nginx\nusers:".to_string(), false),
        ("proxy: nginx\nusers: [{username: 1001, generate: true}]".to_string(), true),
        (format!("proxy: nginx\n{user}\napi_keys: [{{name: 2024, generate: true}}]"), true),
        ("proxy: nginx\nusers: [{username: alice, password: 12345678901234567890}]".to_string(), true),
        ("proxy: nginx\nusers: [{username: alice, password: true}]".to_string(), true),
        (format!("proxy: nginx\n{user}\nfile_group: True"), true),
        (format!("proxy: nginx\n{user}\nport: '8080'"), false),
    ];
    for (yaml, valid) in cases {
        let tool = load_config(&yaml, "case.yaml").map(|_| ()).map_err(|e| e.to_string());
        let schema = validator.check_yaml(&yaml);
        assert_eq!(tool.is_ok(), valid, "{yaml}\nthe tool: {tool:?}");
        assert_eq!(schema.is_ok(), valid, "{yaml}\nthe schema: {schema:?}");
    }
}

/// What yaml-language-server says about a file on disk: the diagnostics'
/// lines and messages, and the completions at `at` (0-based LINE:COLUMN).
fn editor(file: &Path, at: Option<&str>) -> serde_json::Value {
    let out = Command::new("node")
        .arg(format!("{ROOT}/tests/clients/yaml_language_server.mjs"))
        .arg(file)
        .args(at)
        .env("CLIENTS_NODE", installed("node"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}: {}\n{stdout}", file.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("the language server's driver printed {stdout}: {e}"))
}

/// One wrong value per line marked `# !`, a kind of rule each: the editor
/// must mark exactly those lines.
const MARKED: &str = r#"# yaml-language-server: $schema=answers.schema.json
proxy: apache                      # !
port: 70000                        # !
domain: "a.com; }"                 # !
listen_address: localhost          # !
upstream: "127.0.0.1:11434; }"     # !
allow_from: ["10.0.0.0/8;"]        # !
timeout: forever                   # !
bcrypt_cost: 3                     # !
file_group: "www data"             # !
users:
  - username: "bob;"               # !
    generate: true
  - username: carol
    password_hash: "$apr1$x$y"     # !
  - username: dave
    password_env: "A B"            # !
  - username: erin                 # !
    generate: true
    password: "a long enough password"
  - username: frank
    password: ""                   # !
    role: root                     # !
api_keys:
  - name: ci
    key_hash: "nope"               # !
https:
  enabled: false
  email: "a b@c.com"               # !
  acme_directory: "https://a.com/d\"ir"   # !
  http_port: 0                     # !
  acme_ca_root: "/etc/../x"        # !
paths:
  htpasswd: "relative/x"           # !
  auth_socket: "/run/x y.sock"     # !
ban: {after: 0, within: "1h{", for: "1 year and a day"}  # !
mystery: 1                         # !
"#;

#[test]
fn an_editor_marks_every_wrong_line_in_words_and_offers_every_key() {
    let sandbox = Sandbox::new();
    for document in [Document::Answers, Document::WizardDefaults] {
        let published = fs::read_to_string(format!("{ROOT}/examples/{}", document.file_name())).unwrap();
        sandbox.write(document.file_name(), &published);
    }
    // Each example with one unknown key added: the editor marks that line
    // and nothing else (so it read the schema, and the example is valid).
    for example in examples() {
        let text = fs::read_to_string(&example).unwrap();
        let name = example.file_name().unwrap().to_str().unwrap();
        let copy = sandbox.write(name, &format!("{text}mystery_key_for_the_test: 1\n"));
        let said = editor(&copy, None);
        let lines: Vec<u64> =
            said["diagnostics"].as_array().unwrap().iter().map(|d| d["line"].as_u64().unwrap()).collect();
        assert_eq!(lines, [text.lines().count() as u64], "{name}: {said:#}");
    }

    let marked = sandbox.write("marked.yaml", MARKED);
    assert!(load_config(MARKED, "marked.yaml").is_err());
    let said = editor(&marked, None);
    let mut lines: Vec<u64> =
        said["diagnostics"].as_array().unwrap().iter().map(|d| d["line"].as_u64().unwrap()).collect();
    lines.sort();
    lines.dedup();
    let expected: Vec<u64> =
        MARKED.lines().enumerate().filter(|(_, l)| l.ends_with("# !")).map(|(i, _)| i as u64).collect();
    assert_eq!(lines, expected, "the lines the editor marks: {said:#}");
    // A pattern's words, not the pattern (which is the editor's default).
    let messages: Vec<&str> =
        said["diagnostics"].as_array().unwrap().iter().map(|d| d["message"].as_str().unwrap()).collect();
    assert!(messages.contains(&ollama_secure::fields::HOST_FORM), "{messages:#?}");
    assert!(!messages.iter().any(|m| m.contains("does not match the pattern")), "{messages:#?}");

    let started =
        sandbox.write("started.yaml", "# yaml-language-server: $schema=answers.schema.json\nproxy: nginx\n\n");
    let said = editor(&started, Some("2:0"));
    let offered: Vec<&str> = said["completions"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    let keys = schema(Document::Answers)["properties"].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    for key in keys.iter().filter(|k| *k != "proxy") {
        assert!(offered.contains(&key.as_str()), "{key} is not offered: {offered:?}");
    }
}
