//! hoist against a registry serving TLS with a private CA: trusted through
//! `registry_ca_file`, refused without it, and accepted with verification explicitly off.

mod support;

use std::process::Command;

use support::*;

/// A CA and a server certificate for 127.0.0.1 signed by it, made with the openssl CLI.
fn pki(dir: &tempfile::TempDir) -> (String, String, String) {
    let d = dir.path();
    let f = |n: &str| d.join(n).display().to_string();
    run(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=hoist test CA",
        "-keyout",
        &f("ca.key"),
        "-out",
        &f("ca.pem"),
    ]))
    .unwrap();
    run(Command::new("openssl").args([
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &f("srv.key"),
        "-out",
        &f("srv.csr"),
    ]))
    .unwrap();
    std::fs::write(d.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(Command::new("openssl").args([
        "x509",
        "-req",
        "-in",
        &f("srv.csr"),
        "-CA",
        &f("ca.pem"),
        "-CAkey",
        &f("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &f("ext.cnf"),
        "-out",
        &f("srv.pem"),
    ]))
    .unwrap();
    (f("ca.pem"), f("srv.pem"), f("srv.key"))
}

fn tls_registry(dir: &tempfile::TempDir) -> (Registry, String) {
    let (ca, cert, key) = pki(dir);
    let reg = Registry::start_with(&format!(
        "  tls:\n    certificate: {cert}\n    key: {key}\n"
    ))
    .unwrap();
    assert!(reg.url().starts_with("https://"));
    (reg, ca)
}

#[test]
fn a_private_ca_is_trusted_through_registry_ca_file() {
    let dir = scratch();
    let (reg, ca) = tls_registry(&dir);
    let hoist = Hoist::with_env(&reg.url(), &[("HOIST_REGISTRY_CA_FILE", &ca)]).unwrap();
    let built = archives::oci_layout(archives::OciShape::Plain, "tls/app:1");
    let a = push_bytes(&hoist, "/push/tls/app:1", &built.bytes).unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(reg.tags("tls/app"), vec!["1"]);
}

/// Without the CA, the registry's certificate is refused: the registry cannot be reached
/// safely, which is REGISTRY_UNAVAILABLE (503), with a message naming the certificate.
#[test]
fn an_untrusted_certificate_is_refused_and_nothing_is_pushed() {
    let dir = scratch();
    let (reg, _ca) = tls_registry(&dir);
    let hoist = Hoist::with_env(&reg.url(), &[("HOIST_RETRIES", "0")]).unwrap();
    let built = archives::oci_layout(archives::OciShape::Plain, "tls/app:1");
    let a = push_bytes(&hoist, "/push/tls/untrusted:1", &built.bytes).unwrap();
    assert_eq!(
        (a.status, a.code()),
        (503, "REGISTRY_UNAVAILABLE"),
        "{}",
        a.body
    );
    let msg = a.message().to_ascii_lowercase();
    assert!(
        msg.contains("certificate") && (msg.contains("issuer") || msg.contains("unknown")),
        "{msg}"
    );
    assert!(reg.tags("tls/untrusted").is_empty());
}

/// `registry_tls_verify = false` pushes to a registry whose certificate nothing trusts, and
/// says so loudly at start.
#[test]
fn verification_can_be_turned_off_explicitly() {
    let dir = scratch();
    let (reg, _ca) = tls_registry(&dir);
    let hoist = Hoist::with_env(&reg.url(), &[("HOIST_REGISTRY_TLS_VERIFY", "false")]).unwrap();
    let built = archives::oci_layout(archives::OciShape::Plain, "tls/app:1");
    let a = push_bytes(&hoist, "/push/tls/insecure:1", &built.bytes).unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(reg.tags("tls/insecure"), vec!["1"]);
    let warning = hoist
        .stderr()
        .lines()
        .find(|l| l.contains("TLS verification of the registry is OFF"))
        .map(String::from);
    assert!(
        warning.as_deref().is_some_and(|l| l.contains("WARN")),
        "no start-up warning: {warning:?}\n{}",
        hoist.stderr()
    );
}
