//! The token issuer's signing key: an RSA key whose self-signed certificate is the
//! registry's `rootcertbundle`, and RS256 JWTs signed with it through `openssl`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use base64::Engine;
use serde_json::{Value, json};

use crate::support;

/// Signs JWTs with an RSA key whose self-signed certificate is the registry's root bundle.
pub struct Signer {
    key: PathBuf,
    pub cert: PathBuf,
    x5c: String,
    next_jti: AtomicU64,
}

impl Signer {
    pub fn new(dir: &Path) -> Result<Signer> {
        let key = dir.join("issuer-key.pem");
        let cert = dir.join("issuer-cert.pem");
        support::run(
            Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                ])
                .args(["-subj", "/CN=test-issuer"])
                .args(["-addext", "keyUsage=critical,digitalSignature,keyCertSign"])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert),
        )?;
        let pem = std::fs::read_to_string(&cert)?;
        // x5c is the standard base64 of the DER: the PEM body, joined.
        let x5c: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        Ok(Signer {
            key,
            cert,
            x5c,
            next_jti: AtomicU64::new(1),
        })
    }

    /// A signed token granting every action of `scopes` (`repository:name:a,b`).
    pub fn mint(&self, subject: &str, scopes: &[String], lifetime: u64) -> Result<String> {
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let access: Vec<Value> = scopes
            .iter()
            .filter_map(|s| {
                let (typ, rest) = s.split_once(':')?;
                let (name, actions) = rest.rsplit_once(':')?;
                Some(json!({
                    "type": typ,
                    "name": name,
                    "actions": actions.split(',').collect::<Vec<_>>(),
                }))
            })
            .collect();
        let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]});
        let claims = json!({
            "iss": "test-issuer",
            "sub": subject,
            "aud": "test-registry",
            "exp": now + lifetime,
            "nbf": now - 5,
            "iat": now,
            "jti": format!("jti-{}", self.next_jti.fetch_add(1, Ordering::Relaxed)),
            "access": access,
        });
        let input = format!(
            "{}.{}",
            b64(&serde_json::to_vec(&header)?),
            b64(&serde_json::to_vec(&claims)?)
        );
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .context("openssl stdin")?
            .write_all(input.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() || out.stdout.is_empty() {
            bail!("openssl dgst: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(format!("{input}.{}", b64(&out.stdout)))
    }
}
