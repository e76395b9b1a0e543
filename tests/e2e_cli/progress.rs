//! How a push shows its progress: an indicatif bar redrawn in place on a terminal (a pty
//! from `script`), plain growing lines in a pipe, and nothing but the result with `--quiet`.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::{Env, registry_digest, text};
use crate::support::archives::image;
use crate::support::fault_proxy::{Fault, Proxy, Rule};
use crate::support::{Registry, require_tools};

/// A registry behind a proxy that reads blob bodies at about 1 MiB/s, so that a push of a
/// few MiB lasts a few seconds and its progress shows.
fn slow_registry(reg: &Registry) -> Proxy {
    let proxy = Proxy::start(&reg.url()).unwrap();
    let throttle = Fault::Throttle {
        chunk: 64 << 10,
        pause: Duration::from_millis(60),
    };
    proxy.set_rules(vec![Rule::new("PATCH", "/blobs/uploads/", throttle)]);
    proxy
}

/// `1.50` `MiB` as a number of bytes.
fn bytes(amount: &str, unit: &str) -> f64 {
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => panic!("unit {unit:?}"),
    };
    amount.parse::<f64>().unwrap() * scale
}

/// On a terminal: an indicatif bar redrawn in place (carriage returns, escape codes) with
/// its template's words, a line per blob above it, then the one-line summary.
#[test]
fn progress_on_a_terminal_is_a_bar() {
    require_tools(&["script"]);
    let (reg, env) = (Registry::start().unwrap(), Env::new());
    let slow = slow_registry(&reg);
    let img = image(61, &[3 << 20], "v1");
    let file = env.file("img.tar", &img.tar);
    let line = env.push_line(&file, &["cli/tty:v1", "--registry", &slow.url()]);
    let out = Command::new("timeout")
        .args(["120", "script", "-qfec", &line, "/dev/null"])
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let terminal = text(&out.stdout);
    assert!(out.status.success(), "{terminal}{}", text(&out.stderr));
    // Redrawn in place: back to the line's start, clear it (script turns every \n into \r\n,
    // so a carriage return alone would prove nothing).
    assert!(terminal.contains("\r\x1b[2K"), "no redraw: {terminal:?}");
    assert!(terminal.contains(" read · "), "no bar: {terminal:?}");
    assert!(terminal.contains(" sent · "), "no bytes sent: {terminal:?}");
    assert!(terminal.contains(" blobs · "), "no blobs: {terminal:?}");
    assert!(terminal.contains("/s"), "no throughput: {terminal:?}");
    let blob = format!("blob {} ", img.layers[0]);
    assert!(
        terminal.contains(&blob),
        "no line for the layer: {terminal:?}"
    );
    let digest = registry_digest(&reg, "cli/tty", "v1");
    let summary = format!("pushed cli/tty:v1@{digest} (2 blobs: 2 uploaded) in ");
    assert!(
        terminal.contains(&summary),
        "{summary:?} not in {terminal:?}"
    );
}

/// In a pipe (a CI log): plain lines every `--progress-interval`, growing, with no escape
/// code and no carriage return; the summary alone on stdout.
#[test]
fn progress_in_a_pipe_is_plain_lines() {
    let (reg, env) = (Registry::start().unwrap(), Env::new());
    let slow = slow_registry(&reg);
    let img = image(62, &[3 << 20], "v1");
    let file = env.file("img.tar", &img.tar);
    let line = env.push_line(
        &file,
        &[
            "cli/pipe:v1",
            "--registry",
            &slow.url(),
            "--progress-interval",
            "0.3",
        ],
    );
    let out = Command::new("timeout")
        .args(["120", "sh", "-c", &line])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains('\r') && !stderr.contains('\x1b'),
        "{stderr:?}"
    );
    assert!(stderr.lines().all(|l| l.starts_with("hoist: ")), "{stderr}");
    // `hoist: 1.50 MiB read, 1.20 MiB sent, 0 blobs, 512.00 KiB/s`
    let read: Vec<f64> = stderr
        .lines()
        .filter(|l| l.contains(" read, ") && l.contains(" sent, ") && l.contains(" blobs, "))
        .map(|l| {
            let mut words = l["hoist: ".len()..].split(' ');
            bytes(words.next().unwrap(), words.next().unwrap())
        })
        .collect();
    assert!(
        read.len() >= 3,
        "a line every 0.3 s of a 3 s push: {stderr}"
    );
    assert!(read.windows(2).all(|w| w[0] <= w[1]), "{stderr}");
    assert!(read.iter().any(|r| *r > 0.0), "{stderr}");
    let blob = format!("hoist: blob {} ", img.layers[0]);
    let blob_line = stderr.lines().find(|l| l.starts_with(&blob));
    assert!(
        blob_line.is_some_and(|l| l.ends_with(" MiB uploaded")),
        "{stderr}"
    );
    let digest = registry_digest(&reg, "cli/pipe", "v1");
    assert!(
        stdout.starts_with(&format!(
            "pushed cli/pipe:v1@{digest} (2 blobs: 2 uploaded) in "
        )),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
}

/// `--quiet`: nothing on stderr, the summary (or with `--json` the report) on stdout.
#[test]
fn quiet_prints_only_the_result() {
    let (reg, env) = (Registry::start().unwrap(), Env::new());
    let img = image(63, &[256 << 10], "v1");
    let file = env.file("img.tar", &img.tar);
    let path = file.to_str().unwrap();
    let out = env.push(&[path, "cli/quiet:v1", "--registry", &reg.url(), "--quiet"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    let digest = registry_digest(&reg, "cli/quiet", "v1");
    assert!(text(&out.stdout).starts_with(&format!("pushed cli/quiet:v1@{digest} ")));
    let out = env.push(&[
        path,
        "cli/quiet:v2",
        "--registry",
        &reg.url(),
        "-q",
        "--json",
    ]);
    assert_eq!(text(&out.stderr), "");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["images"][0]["tags"][0], "v2");
}
