//! Values that would inject directives are refused with an error that names
//! the field; random strings in every field either get a clean error or
//! produce a config the real validator accepts with no extra directive.

use ollama_secure::answers::{Answers, HttpsAnswers, PathAnswers, Scalar, UserAnswer};
use ollama_secure::config::Config;
use ollama_secure::paths::Os;
use ollama_secure::proxy::ProxyKind as Proxy;
use std::path::Path;

use crate::support::{MapSecrets, Sandbox};
use crate::validators::{prepare_main_config, render_and_validate, sandboxed_config};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Domain,
    Username,
    Upstream,
    Email,
    AcmeDirectory,
    HtpasswdPath,
    CaddySitePath,
    ListenAddress,
    Timeout,
    PasswordHash,
    FileGroup,
    PasswordEnv,
    AllowFrom,
    CorsOrigin,
}

impl Field {
    pub const ALL: [Field; 14] = [
        Field::Domain,
        Field::Username,
        Field::Upstream,
        Field::Email,
        Field::AcmeDirectory,
        Field::HtpasswdPath,
        Field::CaddySitePath,
        Field::ListenAddress,
        Field::Timeout,
        Field::PasswordHash,
        Field::FileGroup,
        Field::PasswordEnv,
        Field::AllowFrom,
        Field::CorsOrigin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Domain => "domain",
            Field::Username => "users[0].username",
            Field::Upstream => "upstream",
            Field::Email => "https.email",
            Field::AcmeDirectory => "https.acme_directory",
            Field::HtpasswdPath => "paths.htpasswd",
            Field::CaddySitePath => "paths.caddy_site",
            Field::ListenAddress => "listen_address",
            Field::Timeout => "timeout",
            Field::PasswordHash => "users[0].password_hash",
            Field::FileGroup => "file_group",
            Field::PasswordEnv => "users[0].password_env",
            Field::AllowFrom => "allow_from[0]",
            Field::CorsOrigin => "cors_origins[0]",
        }
    }
}

/// Valid answers with `value` put into `field`. HTTPS fields come with a
/// domain and https enabled so that they reach the output.
pub fn answers_with(proxy: Proxy, field: Field, value: &str) -> Answers {
    let mut a = Answers {
        proxy: Some(proxy.name().to_string()),
        users: vec![UserAnswer {
            username: "alice".into(),
            password: Some("correct horse battery staple".into()),
            ..Default::default()
        }],
        bcrypt_cost: Some(4),
        ..Default::default()
    };
    let v = value.to_string();
    match field {
        Field::Domain => a.domain = Some(v),
        Field::Username => a.users[0].username = v,
        Field::Upstream => a.upstream = Some(ollama_secure::answers::Upstreams::One(v)),
        Field::Email | Field::AcmeDirectory => {
            a.domain = Some("ollama.example.com".into());
            a.https = Some(HttpsAnswers {
                enabled: true,
                email: matches!(field, Field::Email).then(|| v.clone()),
                acme_directory: matches!(field, Field::AcmeDirectory).then(|| v.clone()),
                ..Default::default()
            });
        }
        Field::HtpasswdPath => a.paths = Some(PathAnswers { htpasswd: Some(v), ..Default::default() }),
        Field::CaddySitePath => a.paths = Some(PathAnswers { caddy_site: Some(v), ..Default::default() }),
        Field::ListenAddress => a.listen_address = Some(v),
        Field::AllowFrom => a.allow_from = vec![v],
        Field::CorsOrigin => a.cors_origins = vec![v],
        Field::Timeout => a.timeout = Some(Scalar::Text(v)),
        Field::PasswordHash => {
            a.users[0] = UserAnswer { username: "alice".into(), password_hash: Some(v), ..Default::default() }
        }
        Field::FileGroup => a.file_group = Some(v),
        Field::PasswordEnv => {
            a.users[0] = UserAnswer { username: "alice".into(), password_env: Some(v), ..Default::default() }
        }
    }
    a
}

pub fn load(answers: &Answers) -> Result<Config, String> {
    Config::from_answers(answers, "hostile.yaml", Os::Debian, &MapSecrets(Default::default()))
        .map_err(|e| e.to_string())
}

/// Values that would inject directives or are otherwise wrong, by field:
/// every one is refused (and by the schema too, `schema.rs`).
pub fn hostile_table() -> Vec<(Field, Vec<String>)> {
    let hash = "$2y$10$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234";
    let table: &[(Field, &[&str])] = &[
        (
            Field::Domain,
            &[
                "a.com; } server { listen 9999",
                "a.com\nlisten 9999;",
                "a.com{",
                "\"a.com\"",
                "'a.com'",
                "a.com #x",
                "$host",
                "a com",
                "a.com;",
                "a.com\r",
                "{$HOME}.com",
                "a.com\\",
            ],
        ),
        (
            Field::Username,
            &["bob:x", "bob smith", "bob\n", "bo{b", "bob;", "$bob", "bob\"", "bob'", "bob#", "{bob}", "bob\t", ""],
        ),
        (
            Field::Upstream,
            &[
                "127.0.0.1:11434; } server {",
                "127.0.0.1:11434\n",
                "http://a b:1",
                "127.0.0.1:11434/{x}",
                "a\";b:1",
                "unix:/x",
            ],
        ),
        (Field::Email, &["a@b.com; }", "a b@c.com", "a@b.com\n", "\"a\"@b.com", "a{x}@b.com"]),
        (
            Field::AcmeDirectory,
            &[
                "https://a.com/dir; }",
                "https://a.com/d\"ir",
                "https://a.com/{x}",
                "https://a.com/dir\n",
                "https://a.com/#x",
            ],
        ),
        (Field::HtpasswdPath, &["/etc/x; }", "/etc/x y", "/etc/x\n", "/etc/{x}", "/etc/x#", "/etc/'x'", "relative/x"]),
        (Field::CaddySitePath, &["/etc/x; }", "/etc/x y", "/etc/{x}"]),
        (Field::ListenAddress, &["127.0.0.1; }", "0.0.0.0 ssl", "localhost", "127.0.0.1\n"]),
        (Field::Timeout, &["10m; }", "600s\n", "1h{", "forever"]),
        (Field::PasswordHash, &[&format!("{hash};"), &format!("{hash}\nbob:x"), "$apr1$x$y", "plain"]),
        (Field::FileGroup, &["www-data; }", "www data", "{x}"]),
        (Field::PasswordEnv, &["A B", "A;B", "1A"]),
        (
            Field::AllowFrom,
            &["10.0.0.0/8 0; }", "10.0.0.0/8;", "10.0.0.0/8\n", "10.0.0.0/8 1.2.3.4", "all", "10.0.0.1/8", "{remote}"],
        ),
        (
            Field::CorsOrigin,
            &[
                "https://a.com; }",
                "https://a.com\n",
                "https://a.com\"",
                "https://a.com{",
                "https://a.com #x",
                "https://a.com/",
                "*",
                "null",
                "file:///x",
                "{http.request.header.Origin}",
                "$http_origin",
                "https://a.com$",
                "https://a.com|https://b.com",
            ],
        ),
    ];
    table.iter().map(|(field, values)| (*field, values.iter().map(|v| v.to_string()).collect())).collect()
}

#[test]
fn hostile_values_are_refused_with_the_field_named() {
    for (field, values) in &hostile_table() {
        for proxy in [Proxy::Nginx, Proxy::Caddy] {
            for value in values {
                match load(&answers_with(proxy, *field, value)) {
                    Ok(_) => panic!("{proxy:?}: {field:?} = {value:?} was accepted"),
                    Err(message) => assert!(
                        message.starts_with("hostile.yaml:") && message.contains(&format!(": {}: ", field.name())),
                        "{field:?} = {value:?}: the error does not name the field:\n{message}"
                    ),
                }
            }
        }
    }
}

/// xorshift64: a fixed seed makes any failure reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick(&mut self, items: &[char]) -> char {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// Mostly characters a field accepts, with hostile ones mixed in, so that
/// both outcomes (refused, accepted) occur.
pub fn random_value(rng: &mut Rng, field: Field) -> String {
    // Config syntax, and characters of other alphabets (multibyte in UTF-8,
    // where byte-index slicing would panic).
    let hostile: Vec<char> = ";{}\"' \n\t$#\\`\ré€ßж你😀\u{200b}\u{feff}".chars().collect();
    let base: Vec<char> = match field {
        Field::Domain => "abcxyz019-.".chars().collect(),
        Field::Username => "abcXYZ019._-@+:".chars().collect(),
        Field::Upstream => "127.0.1:34htps/[]".chars().collect(),
        Field::Email => "abc.-+@example.com".chars().collect(),
        Field::AcmeDirectory => "https://a.b/c-d:14".chars().collect(),
        Field::HtpasswdPath | Field::CaddySitePath => "/tmp/ab._-+".chars().collect(),
        Field::ListenAddress => "127.0.1:".chars().collect(),
        Field::Timeout => "0123456789smh".chars().collect(),
        Field::PasswordHash => "$2y10./abcXYZ".chars().collect(),
        Field::FileGroup => "www-data_".chars().collect(),
        Field::PasswordEnv => "AB_1".chars().collect(),
        Field::AllowFrom => "0123456789./:abcdef".chars().collect(),
        Field::CorsOrigin => "https:/*.abcx-019[]".chars().collect(),
    };
    let len = 1 + (rng.next() % 24) as usize;
    let mut value: String =
        (0..len).map(|_| if rng.next() % 10 < 8 { rng.pick(&base) } else { rng.pick(&hostile) }).collect();
    // Seed some structurally valid values so the "accepted" branch is exercised.
    if rng.next().is_multiple_of(4) {
        value = match field {
            Field::Domain => format!("ollama{}.example.com", rng.next() % 100),
            Field::Username => format!("user.{}", rng.next() % 100),
            Field::Upstream => format!("127.0.0.{}:{}", rng.next() % 250 + 1, rng.next() % 60000 + 1),
            Field::Email => format!("ops{}@example.com", rng.next() % 100),
            Field::AcmeDirectory => format!("https://acme{}.example.com:14000/dir", rng.next() % 10),
            Field::ListenAddress => format!("127.0.0.{}", rng.next() % 250 + 1),
            Field::AllowFrom => format!("10.{}.0.0/16", rng.next() % 256),
            Field::CorsOrigin => {
                format!("https://{}app{}.example.com", ["", "*."][(rng.next() % 2) as usize], rng.next() % 100)
            }
            Field::Timeout => format!("{}m", rng.next() % 60 + 1),
            _ => value,
        };
    }
    value
}

/// The shape of a config file: its non-comment lines reduced to directive
/// names (a Caddy site address counts as "site", a basicauth user line as
/// "user", an nginx geo row as "network"), and its braces and semicolons. An injected directive changes
/// this shape.
fn shape(text: &str) -> (Vec<String>, usize, usize, usize) {
    let mut names = Vec::new();
    let mut in_users = false;
    let mut depth = 0usize;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.split_whitespace().next().unwrap().to_string();
        let opens_site = depth == 0 && line.ends_with('{') && !["upstream", "server"].contains(&first.as_str());
        depth = (depth + line.matches('{').count()).saturating_sub(line.matches('}').count());
        if in_users && line != "}" {
            names.push("user".to_string());
            continue;
        }
        in_users = line.starts_with("basicauth ") && line.ends_with('{');
        // A map row that names a credential, or a geo row that names a
        // network: the name is the value under test.
        let first = if first.starts_with("user:") || first.starts_with("key:") {
            "credential".to_string()
        } else if ollama_secure::fields::network(&first).is_ok() {
            "network".to_string()
        } else if first.starts_with("\"~^") && line.ends_with(" $http_origin;") {
            "origin".to_string()
        } else {
            first
        };
        names.push(if opens_site { "site".to_string() } else { first });
    }
    names.sort();
    let count = |c: char| text.lines().filter(|l| !l.trim_start().starts_with('#')).map(|l| l.matches(c).count()).sum();
    (names, count('{'), count('}'), count(';'))
}

fn site_text(config: &Config) -> String {
    let path = match config.settings.proxy {
        Proxy::Nginx => &config.settings.paths.nginx_site,
        Proxy::Caddy => &config.settings.paths.caddy_site,
    };
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn random_values_get_a_clean_error_or_a_valid_config_without_extra_directives() {
    let fields = [
        Field::Domain,
        Field::Username,
        Field::Upstream,
        Field::Email,
        Field::AcmeDirectory,
        Field::ListenAddress,
        Field::Timeout,
        Field::PasswordHash,
        Field::AllowFrom,
        Field::CorsOrigin,
    ];
    let mut rng = Rng(0x5eed_0115_ec0e);
    let (mut refused, mut validated) = (0, 0);
    for field in fields {
        for proxy in [Proxy::Nginx, Proxy::Caddy] {
            let sandbox = Sandbox::new();
            prepare_main_config(&sandbox, proxy);
            let baseline_answers = answers_with(
                proxy,
                field,
                match field {
                    Field::Domain => "baseline.example.com",
                    Field::Username => "baseline",
                    Field::Upstream => "127.0.0.1:11434",
                    Field::Email => "baseline@example.com",
                    Field::AcmeDirectory => "https://baseline.example.com/dir",
                    Field::ListenAddress => "127.0.0.1",
                    Field::AllowFrom => "10.0.0.0/8",
                    Field::CorsOrigin => "https://baseline.example.com",
                    Field::Timeout => "10m",
                    _ => "$2y$10$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234",
                },
            );
            let yaml_of = |a: &Answers| a.to_yaml();
            let baseline = sandboxed_config(&sandbox, &yaml_of(&baseline_answers));
            let (ok, output) = render_and_validate(&sandbox, &baseline);
            assert!(ok, "baseline for {field:?} does not validate: {output}");
            let baseline_shape = shape(&site_text(&baseline));
            let mut checked_here = 0;
            for _ in 0..150 {
                let value = random_value(&mut rng, field);
                let answers = answers_with(proxy, field, &value);
                match load(&answers) {
                    Err(message) => {
                        assert!(message.contains(field.name()), "{field:?} = {value:?}: {message}");
                        refused += 1;
                    }
                    // Validating costs a process start: a dozen accepted values per field is plenty.
                    Ok(_) if checked_here >= 12 => {}
                    Ok(_) => {
                        for hostile in [';', '{', '}', '"', '\'', '\n', '#', '`', '\\'] {
                            assert!(!value.contains(hostile), "{field:?} accepted {value:?}");
                        }
                        let config = sandboxed_config(&sandbox, &yaml_of(&answers));
                        let (ok, output) = render_and_validate(&sandbox, &config);
                        assert!(ok, "{proxy:?}: {field:?} = {value:?} was accepted but does not validate:\n{output}");
                        assert_eq!(
                            shape(&site_text(&config)),
                            baseline_shape,
                            "{proxy:?}: {field:?} = {value:?} changed the config's shape"
                        );
                        checked_here += 1;
                        validated += 1;
                    }
                }
            }
        }
    }
    assert!(refused > 500, "too few random values were refused ({refused}): the generator is off");
    assert!(validated > 40, "too few random values were accepted and validated ({validated}): the generator is off");
}

/// Writes `yaml` (with the sandbox's paths) and runs `init --dry-run` on it.
fn dry_run(sandbox: &Sandbox, yaml: &str) -> crate::support::Tool {
    let path = sandbox.write("answers.yaml", &format!("{yaml}{}", sandbox.paths_yaml()));
    crate::support::Tool::new().args(["init", "--dry-run", "--answers", path.to_str().unwrap()])
}

const ALICE: &str = "users: [{username: alice, generate: true}]\n";

#[test]
fn values_that_crashed_or_were_silently_wrong_get_clear_errors() {
    let sandbox = Sandbox::new();
    let long = "x".repeat(73);
    let cases: &[(String, &str)] = &[
        // A multibyte character where the hash's cost should be panicked (exit 101).
        (
            format!("proxy: nginx\nusers: [{{username: a, password_hash: \"$2y$1€{}\"}}]\n", "a".repeat(52)),
            "users[0].password_hash: not a bcrypt hash",
        ),
        (
            "proxy: nginx\ndomain: \"\"\nhttps: {enabled: true}\nusers: [{username: a, generate: true}]\n".into(),
            "https.enabled: needs a domain",
        ),
        (format!("proxy: nginx\nusers: [{{username: a, password: \"{long}\"}}]\n"), "bcrypt reads only the first 72"),
        ("proxy: nginx\nusers: [{username: a, password: \"before\\0after, long enough\"}]\n".into(), "NUL character"),
        (
            format!("proxy: nginx\nusers: [{{username: a, password_hash: \"$2y$31${}\"}}]\n", "a".repeat(53)),
            "use a hash of cost 4 to 17",
        ),
        (
            format!("proxy: nginx\nupstream: \"http://user:pw@10.0.0.1:11434\"\n{ALICE}"),
            "remove the user:password@ part",
        ),
        (format!("proxy: nginx\nupstream: \"unix:/run/ollama.sock\"\n{ALICE}"), "a unix socket is not supported"),
        (format!("proxy: nginx\ntimeout: 1e9\n{ALICE}"), "timeout: \"1000000000"),
    ];
    for (yaml, expected) in cases {
        let ran = dry_run(&sandbox, yaml).status(2).stderr_has(expected).run();
        assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
    }
}

#[test]
fn one_file_for_two_paths_is_refused() {
    let sandbox = Sandbox::new();
    let site = sandbox.path("etc/nginx/sites-available/ollama");
    let yaml = format!("proxy: nginx\n{ALICE}");
    let path = sandbox.write(
        "answers.yaml",
        &format!(
            "{yaml}{}",
            sandbox.paths_yaml().replace(
                &format!("htpasswd: {}", sandbox.path("etc/nginx/ollama.htpasswd").display()),
                &format!("htpasswd: {}", site.display())
            )
        ),
    );
    crate::support::Tool::new()
        .args(["init", "--dry-run", "--answers", path.to_str().unwrap()])
        .status(2)
        .stderr_has(&format!("paths.htpasswd: {} is also paths.nginx_site", site.display()))
        .run();
}

/// Every answers file in tests/answers-errors as its author sees it: each
/// problem as `FILE:LINE:COL: field: message` with the line under it, in
/// the file's words (no Rust type names, the field named once, the key
/// meant by a misspelt one), and nothing else printed or changed.
#[test]
fn answers_file_errors_point_at_the_line_in_words() {
    crate::support::snapshot_settings().bind(|| {
        insta::glob!("../answers-errors", "*.yaml", |path| {
            let relative = path.strip_prefix(crate::support::ROOT).unwrap().to_str().unwrap();
            let ran = crate::support::Tool::new()
                .args(["init", "--dry-run", "--answers", relative])
                .status(2)
                .any_stderr()
                .run();
            for rust in ["i64", "struct ", "invalid type", "unknown field", " at line "] {
                assert!(!ran.stderr.contains(rust), "{relative}: {rust:?} in\n{}", ran.stderr);
            }
            assert!(!ran.stderr.contains('\u{1b}'), "{relative}: an escape sequence reached the terminal");
            let first = ran.stderr.lines().next().unwrap();
            assert!(first.starts_with(&format!("error: {relative}:")), "{relative}: {first}");
            insta::assert_snapshot!("answers-error", ran.stderr);
        });
    });
}

#[test]
fn an_unknown_key_does_not_hide_the_other_problems() {
    let sandbox = Sandbox::new();
    let ran = dry_run(&sandbox, "proxy: nginx\ndomian: x\nport: 0\nusers: [{username: a, pasword: x}]\n")
        .status(2)
        .any_stderr()
        .run();
    for expected in [
        "domian: unknown key `domian`; did you mean `domain`?",
        "users[0].pasword: unknown key `pasword`; did you mean `password`?",
        "port: 0 is not a TCP port",
        "users[0]: give exactly one of",
    ] {
        assert!(ran.stderr.contains(expected), "{expected:?} missing:\n{}", ran.stderr);
    }
}

#[test]
fn a_byte_order_mark_is_not_a_second_document() {
    let sandbox = Sandbox::new();
    dry_run(&sandbox, &format!("\u{feff}proxy: nginx\nlisten_address: 127.0.0.1\n{ALICE}"))
        .stdout_has("Dry run: nothing was changed.")
        .run();
}

#[test]
fn files_that_never_end_are_refused_at_once() {
    let sandbox = Sandbox::new();
    let fifo = sandbox.path("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let big = sandbox.write("big.yaml", &format!("# {}\n", "x".repeat(2 * 1024 * 1024)));
    for answers in [Path::new("/dev/zero"), fifo.as_path(), big.as_path()] {
        crate::support::Tool::new()
            .args(["init", "--dry-run", "--answers", answers.to_str().unwrap()])
            .status(2)
            .stderr_has(&format!("cannot read answers file {}", answers.display()))
            .run();
    }
    for password_file in [Path::new("/dev/zero"), fifo.as_path()] {
        let yaml = format!("proxy: nginx\nusers: [{{username: a, password_file: {}}}]\n", password_file.display());
        dry_run(&sandbox, &yaml).status(2).stderr_has("users[0].password_file: cannot read").run();
    }
    // Nesting the YAML parser would take minutes over.
    let deep = format!("proxy: nginx\nport: {}{}\n{ALICE}", "[".repeat(100_000), "]".repeat(100_000));
    dry_run(&sandbox, &deep).status(2).stderr_has("nested more than 32 levels deep").run();
    // Thousands of users through one alias.
    let many = format!("proxy: nginx\nusers: [&u {{username: a, generate: true}}{}]\n", ", *u".repeat(5000));
    dry_run(&sandbox, &many).status(2).stderr_has("users: 5001 users given; at most 1000 are supported").run();
}
