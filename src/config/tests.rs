use super::*;
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};

#[test]
fn defaults_validate() {
    let c = RawConfig::default().validate().unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.registry.as_str(), "http://127.0.0.1:5000/");
}

#[test]
fn secrets_do_not_print() {
    let raw = RawConfig {
        registry_password: Secret("hunter2".into()),
        ..RawConfig::default()
    };
    assert!(!format!("{raw:?}").contains("hunter2"));
}

#[test]
fn unknown_keys_are_errors() {
    let fig = Figment::from(Serialized::defaults(RawConfig::default()))
        .merge(Toml::string("listne = \"x\""));
    assert!(fig.extract::<RawConfig>().is_err());
}

#[test]
fn plain_http_needs_loopback_or_opt_in() {
    let raw = RawConfig {
        registry: "http://registry.example:5000".into(),
        ..RawConfig::default()
    };
    assert!(raw.validate().is_err());
    let raw = RawConfig {
        registry: "http://registry.example:5000".into(),
        registry_allow_http: true,
        ..RawConfig::default()
    };
    assert!(raw.validate().is_ok());
    let raw = RawConfig {
        registry: "http://[::1]:5000".into(),
        ..RawConfig::default()
    };
    assert!(raw.validate().is_ok());
}

#[test]
fn auth_section_is_read_and_checked() {
    let fig = Figment::from(Serialized::defaults(RawConfig::default())).merge(Toml::string(
        "[auth]\nanonymous = true\nmax_pushes_per_client = 2\n[[auth.oidc]]\nissuer = \"https://token.actions.githubusercontent.com\"\naudience = \"hoist\"\nclaims = { ref_protected = \"true\" }\nrepositories = [\"ci/{repository_owner}/**\"]\n",
    ));
    let c = fig.extract::<RawConfig>().unwrap().validate().unwrap();
    assert!(c.auth.anonymous);
    assert_eq!(c.auth.max_pushes_per_client, 2);
    assert_eq!(c.auth.oidc.len(), 1);
    let typo = Figment::from(Serialized::defaults(RawConfig::default()))
        .merge(Toml::string("[auth]\ntoken_file = \"x\"\n"));
    assert!(typo.extract::<RawConfig>().is_err());
    let insecure = Figment::from(Serialized::defaults(RawConfig::default())).merge(Toml::string(
        "[[auth.oidc]]\nissuer = \"http://issuer.example\"\naudience = \"a\"\nrepositories = [\"x/**\"]\n",
    ));
    assert!(insecure.extract::<RawConfig>().unwrap().validate().is_err());
}

#[test]
fn bad_values_are_errors() {
    let raw = RawConfig {
        registry: "ftp://x".into(),
        ..RawConfig::default()
    };
    assert!(raw.validate().is_err());
    let raw = RawConfig {
        gzip_level: 0,
        ..RawConfig::default()
    };
    assert!(raw.validate().is_err());
}
