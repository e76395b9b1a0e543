//! What authentication costs a push. Starts a real registry and three `hoist serve`
//! processes on loopback: no auth (the baseline), an API token (tokens file of 1,000
//! entries), and a CI identity token (RS256 JWT from a local issuer). Each round pushes a
//! fresh small image (one 64 KiB gzip layer) through each, interleaved, and times the
//! request at the client; then `Authenticator::authenticate` is timed in-process, which is
//! the cost itself (the difference of two push medians is mostly noise on a shared machine).
//!
//! `cargo bench --bench auth` (needs `docker-registry`). Env: `AUTH_BENCH_ROUNDS` (default 40).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use hoist::auth::{Authenticator, RawAuth, RawOidc};
use serde_json::{Value, json};
use support::access::{oidc_config, push_as};
use support::archives::image;
use support::issuer::{Issuer, Signer, claims, now};
use support::{Hoist, Registry};

/// Rounds of warm-up before the timed ones: they warm connections and key caches.
const WARM_UP: usize = 3;

/// One way of identifying clients: hoist's config for it, the `Authorization` value a
/// client sends ("" for none), and the repository it may push to.
struct Mode {
    name: &'static str,
    config: String,
    auth: String,
    repo: &'static str,
}

fn main() {
    if !support::have("docker-registry") {
        println!("docker-registry not installed: skipped");
        return;
    }
    let rounds: usize = std::env::var("AUTH_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let dir = tempfile::tempdir().unwrap();
    let (token, tokens_file) = tokens_file(&dir, 1000);
    let signer = Signer::new();
    let issuer = Issuer::start(signer.jwks());
    let jwt = signer.sign(
        json!({"alg": "RS256", "kid": "rsa-1"}),
        &long_lived(claims(&issuer.url, "acme")),
    );
    let modes = modes(&tokens_file, &token, &issuer.url, &jwt);
    let times = time_pushes(&modes, rounds);
    let us_token = in_process(&format!("Bearer {token}"), token_auth(&tokens_file), 20_000);
    let us_oidc = in_process(&format!("Bearer {jwt}"), oidc_auth(&issuer.url), 2_000);
    print_table(&modes, &times, &[us_token, us_oidc], rounds);
}

/// No auth (the baseline), the API token, the CI identity token.
fn modes(tokens_file: &str, token: &str, issuer: &str, jwt: &str) -> [Mode; 3] {
    [
        Mode {
            name: "none",
            config: String::new(),
            auth: String::new(),
            repo: "bench/none",
        },
        Mode {
            name: "token",
            config: format!("[auth]\ntokens_file = {tokens_file:?}\n"),
            auth: format!("Bearer {token}"),
            repo: "bench/app",
        },
        Mode {
            name: "oidc",
            config: oidc_config(issuer, ""),
            auth: format!("Bearer {jwt}"),
            repo: "ci/acme/app",
        },
    ]
}

/// Milliseconds of each timed push, per mode: one hoist per mode in front of one registry,
/// a fresh image per push, the modes interleaved within each round.
fn time_pushes(modes: &[Mode], rounds: usize) -> Vec<Vec<f64>> {
    let reg = Registry::start().unwrap();
    let hoists: Vec<Hoist> = modes
        .iter()
        .map(|m| {
            Hoist::options(&reg.url())
                .config(&m.config)
                .start()
                .unwrap()
        })
        .collect();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    for round in 0..rounds + WARM_UP {
        for (i, (mode, hoist)) in modes.iter().zip(&hoists).enumerate() {
            let img = image((round * 10 + i) as u64 + 1_000, &[64 << 10], "v1");
            let path = format!("/push/{}:r{round}", mode.repo);
            let t = Instant::now();
            let a = push_as(hoist, &path, &mode.auth, &img.tar);
            let ms = t.elapsed().as_secs_f64() * 1e3;
            assert_eq!(a.status, 201, "{}", a.text());
            if round >= WARM_UP {
                times[i].push(ms);
            }
        }
    }
    times
}

/// The markdown table of bench/README.md: push medians against the baseline, and each
/// mode's in-process `authenticate()` cost (`us`, for the modes after the first) as a share
/// of a push.
fn print_table(modes: &[Mode], times: &[Vec<f64>], us: &[f64], rounds: usize) {
    let base = median(&mut times[0].clone());
    println!(
        "auth cost against a small push (one 64 KiB layer), {rounds} rounds, medians, same run\n"
    );
    println!("| mode | push (ms) | vs none | authenticate() (µs) | share of a push |");
    println!("|---|---|---|---|---|");
    println!("| none | {base:.2} | — | — | — |");
    for ((mode, t), us) in modes.iter().zip(times).skip(1).zip(us) {
        let m = median(&mut t.clone());
        let share = us / (base * 1e3) * 100.0;
        println!(
            "| {} | {m:.2} | {:+.1}% | {us:.1} | {share:.3}% {} |",
            mode.name,
            (m / base - 1.0) * 100.0,
            if share < 1.0 {
                "(under 1%)"
            } else {
                "(OVER 1%)"
            }
        );
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// A tokens file with `n` entries, the last one for the returned token.
fn tokens_file(dir: &tempfile::TempDir, n: usize) -> (String, String) {
    let mut text = String::new();
    for i in 0..n - 1 {
        let digest = support::sha256(format!("other-token-{i}").as_bytes());
        text.push_str(&format!(
            "[[token]]\nname = \"other-{i}\"\nsha256 = \"{}\"\nrepositories = [\"other-{i}/**\"]\n",
            &digest[7..]
        ));
    }
    let new = hoist::auth::tokens::generate("bench", &["bench/**".into()]).unwrap();
    text.push_str(&new.entry);
    let path = dir.path().join("tokens.toml");
    std::fs::write(&path, text).unwrap();
    (new.token.0, path.display().to_string())
}

fn long_lived(mut c: Value) -> Value {
    c["exp"] = json!(now() + 3600);
    c
}

fn token_auth(file: &str) -> RawAuth {
    RawAuth {
        tokens_file: file.into(),
        ..RawAuth::default()
    }
}

fn oidc_auth(issuer: &str) -> RawAuth {
    RawAuth {
        oidc: vec![RawOidc {
            issuer: issuer.into(),
            audience: "hoist".into(),
            jwks_url: String::new(),
            claims: Default::default(),
            repositories: vec!["ci/{repository_owner}/**".into()],
            name_claim: "sub".into(),
        }],
        ..RawAuth::default()
    }
}

/// Mean microseconds of one `authenticate` call (after a warm-up that fills key caches).
fn in_process(header: &str, raw: RawAuth, n: usize) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let auth =
            Authenticator::new(&raw.validate(8).unwrap(), "127.0.0.1:1".parse().unwrap()).unwrap();
        auth.authenticate(Some(header)).await.unwrap();
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(auth.authenticate(Some(header)).await.unwrap());
        }
        let per = t.elapsed() / n as u32;
        per.max(Duration::from_nanos(1)).as_secs_f64() * 1e6
    })
}
