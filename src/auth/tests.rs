//! The authenticator as a whole: schemes, modes, anonymous access and the safe default.

use base64::Engine;

use super::*;

fn basic(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn with_tokens(entry: &str) -> (Authenticator, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.toml");
    std::fs::write(&path, entry).unwrap();
    let raw = RawAuth {
        tokens_file: path.display().to_string(),
        ..RawAuth::default()
    };
    let a = Authenticator::new(&raw.validate(8).unwrap(), "0.0.0.0:8080".parse().unwrap());
    (a.unwrap(), dir)
}

#[tokio::test]
async fn tokens_as_bearer_or_as_basic_password() {
    let new = tokens::generate("ci-team-a", &["team-a/**".into()]).unwrap();
    let (auth, _dir) = with_tokens(&new.entry);
    let token = &new.token.0;
    let c = auth
        .authenticate(Some(&format!("Bearer {token}")))
        .await
        .unwrap();
    assert_eq!(c.name, "ci-team-a");
    assert!(c.may_push("team-a/app") && !c.may_push("prod/app"));
    let c = auth.authenticate(Some(&basic("ci", token))).await.unwrap();
    assert_eq!(c.name, "ci-team-a");
    for bad in [
        None,
        Some(""),
        Some("Bearer nope"),
        Some("Digest x"),
        Some("Basic !!"),
    ] {
        let err = auth.authenticate(bad).await.unwrap_err();
        assert_eq!((err.code(), err.status()), ("UNAUTHORIZED", 401), "{bad:?}");
        assert_eq!(err.challenges(), CHALLENGES);
    }
    let err = auth
        .authenticate(Some(&format!("Bearer {token}x")))
        .await
        .unwrap_err();
    assert!(
        !err.to_string().contains(token.as_str()),
        "errors never echo a token"
    );
}

#[tokio::test]
async fn pass_through_takes_basic_credentials_for_the_registry() {
    let raw = RawAuth {
        mode: Mode::Registry,
        ..RawAuth::default()
    };
    let auth = Authenticator::new(&raw.validate(8).unwrap(), "0.0.0.0:1".parse().unwrap()).unwrap();
    let c = auth
        .authenticate(Some(&basic("alice", "pw")))
        .await
        .unwrap();
    assert_eq!(c.name, "alice");
    assert!(c.may_push("anything/at/all"));
    assert_eq!(
        c.registry,
        Some(PassThrough::Basic {
            username: "alice".into(),
            password: Secret("pw".into())
        })
    );
    assert!(!format!("{c:?}").contains("pw\""));
    assert_eq!(
        auth.authenticate(None).await.unwrap_err().code(),
        "UNAUTHORIZED"
    );
    assert_eq!(
        auth.authenticate(Some("Bearer t"))
            .await
            .unwrap_err()
            .code(),
        "UNAUTHORIZED"
    );
}

#[test]
fn an_open_gateway_off_loopback_refuses_to_start_unless_asked_for() {
    let open = RawAuth::default().validate(8).unwrap();
    let err = Authenticator::new(&open, "0.0.0.0:8080".parse().unwrap())
        .err()
        .expect("refused");
    let msg = err.to_string();
    assert!(
        msg.contains("anonymous = true") && msg.contains("tokens_file"),
        "{msg}"
    );
    assert!(Authenticator::new(&open, "127.0.0.1:8080".parse().unwrap()).is_ok());
    assert!(Authenticator::new(&open, "[::1]:8080".parse().unwrap()).is_ok());
    let on_purpose = RawAuth {
        anonymous: true,
        ..RawAuth::default()
    };
    assert!(
        Authenticator::new(
            &on_purpose.validate(8).unwrap(),
            "0.0.0.0:8080".parse().unwrap()
        )
        .is_ok()
    );
}

#[tokio::test]
async fn anonymous_access_is_loopback_or_on_purpose() {
    let open = RawAuth::default().validate(8).unwrap();
    let auth = Authenticator::new(&open, "127.0.0.1:8080".parse().unwrap()).unwrap();
    assert_eq!(auth.authenticate(None).await.unwrap().name, "anonymous");
    // An open gateway ignores credentials some clients always send.
    assert_eq!(
        auth.authenticate(Some("Basic eDp5")).await.unwrap().name,
        "anonymous"
    );
    let new = tokens::generate("a", &["a/**".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    std::fs::write(&path, &new.entry).unwrap();
    let both = RawAuth {
        tokens_file: path.display().to_string(),
        anonymous: true,
        ..RawAuth::default()
    };
    let auth =
        Authenticator::new(&both.validate(8).unwrap(), "0.0.0.0:1".parse().unwrap()).unwrap();
    assert_eq!(auth.authenticate(None).await.unwrap().name, "anonymous");
    assert_eq!(
        auth.authenticate(Some(&format!("Bearer {}", new.token.0)))
            .await
            .unwrap()
            .name,
        "a"
    );
    // A wrong token is refused, not served as anonymous.
    assert!(auth.authenticate(Some("Bearer hoist_nope")).await.is_err());
}

#[test]
fn the_page_asks_for_what_the_authenticator_checks() {
    let open = RawAuth::default().validate(8).unwrap();
    let auth = Authenticator::new(&open, "127.0.0.1:8080".parse().unwrap()).unwrap();
    assert_eq!(auth.page_credentials(), (PageCredentials::Nothing, true));
    let new = tokens::generate("ci", &["a/**".into()]).unwrap();
    let (auth, _dir) = with_tokens(&new.entry);
    assert_eq!(auth.page_credentials(), (PageCredentials::Token, false));
    let raw = RawAuth {
        mode: Mode::Registry,
        ..RawAuth::default()
    };
    let auth = Authenticator::new(&raw.validate(8).unwrap(), "0.0.0.0:1".parse().unwrap()).unwrap();
    assert_eq!(
        auth.page_credentials(),
        (PageCredentials::RegistryLogin, false)
    );
}
