//! What authentication costs a push. Starts a real registry and three `hoist serve`
//! processes on loopback: no auth (the baseline), an API token (tokens file of 1,000
//! entries), and a CI identity token (RS256 JWT from a local issuer). Each round pushes a
//! fresh small image (one 64 KiB gzip layer) through each, interleaved, and times the
//! request at the client; then `Authenticator::authenticate` is timed in-process, which is
//! the cost itself (the difference of two push medians is mostly noise on a shared machine).
//!
//! `cargo bench --bench auth` (needs `docker-registry`). Env: `AUTH_BENCH_ROUNDS` (default 40).

#[path = "../tests/access_support/mod.rs"]
mod access_support;

use std::time::{Duration, Instant};

use access_support::issuer::{Issuer, Signer, claims};
use access_support::{Hoist, Registry, oci_archive};
use hoist::auth::{Authenticator, RawAuth, RawOidc};

fn main() {
    if std::process::Command::new("docker-registry")
        .arg("--version")
        .output()
        .is_err()
    {
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
        serde_json::json!({"alg": "RS256", "kid": "rsa-1"}),
        &long_lived(claims(&issuer.url, "acme")),
    );
    let reg = Registry::start().unwrap();
    let modes = [
        ("none", String::new(), String::new(), "bench/none"),
        (
            "token",
            format!("[auth]\ntokens_file = {tokens_file:?}\n"),
            format!("Bearer {token}"),
            "bench/app",
        ),
        (
            "oidc",
            oidc_config(&issuer.url),
            format!("Bearer {jwt}"),
            "ci/acme/app",
        ),
    ];
    let hoists: Vec<Hoist> = modes
        .iter()
        .map(|(_, cfg, _, _)| Hoist::start(&reg.url(), cfg, &[]).unwrap())
        .collect();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    for round in 0..rounds + 3 {
        for (i, ((_, _, auth, repo), hoist)) in modes.iter().zip(&hoists).enumerate() {
            let img = oci_archive((round * 10 + i) as u64 + 1_000, 64 << 10, None);
            let headers: Vec<(&str, &str)> = if auth.is_empty() {
                vec![]
            } else {
                vec![("Authorization", auth)]
            };
            let t = Instant::now();
            let a = hoist.push(&format!("/push/{repo}:r{round}"), &headers, &img.bytes);
            let ms = t.elapsed().as_secs_f64() * 1e3;
            assert_eq!(a.status, 201, "{}", a.text());
            if round >= 3 {
                times[i].push(ms); // the first rounds warm connections and key caches
            }
        }
    }
    let us_token = in_process(&format!("Bearer {token}"), token_auth(&tokens_file), 20_000);
    let us_oidc = in_process(&format!("Bearer {jwt}"), oidc_auth(&issuer.url), 2_000);
    let base = median(&mut times[0].clone());
    println!(
        "auth cost against a small push (one 64 KiB layer), {rounds} rounds, medians, same run\n"
    );
    println!("| mode | push (ms) | vs none | authenticate() (µs) | share of a push |");
    println!("|---|---|---|---|---|");
    println!("| none | {base:.2} | — | — | — |");
    for (i, us) in [(1, us_token), (2, us_oidc)] {
        let m = median(&mut times[i].clone());
        let share = us / (base * 1e3) * 100.0;
        println!(
            "| {} | {m:.2} | {:+.1}% | {us:.1} | {share:.3}% {} |",
            modes[i].0,
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
        let digest = access_support::sha256(format!("other-token-{i}").as_bytes());
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

fn long_lived(mut c: serde_json::Value) -> serde_json::Value {
    c["exp"] = serde_json::json!(access_support::issuer::now() + 3600);
    c
}

fn oidc_config(issuer: &str) -> String {
    format!(
        "[[auth.oidc]]\nissuer = {issuer:?}\naudience = \"hoist\"\nrepositories = [\"ci/{{repository_owner}}/**\"]\n"
    )
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
