//! One push of a fixture archive: a fresh registry with a hoist in front, the archive sent raw,
//! the result verified.
use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use crate::expect::Expect;
use crate::fixture::Fixture;
use crate::support::{Hoist, Registry, push_file};
use crate::verify::verify;

/// A fresh registry and a hoist in front of it. Hoist is declared first so it stops first.
pub(crate) struct Env {
    pub(crate) hoist: Hoist,
    pub(crate) registry: Registry,
}

/// A fresh registry with a hoist in front of it.
pub(crate) fn env() -> Result<Env> {
    let registry = Registry::start()?;
    let hoist = Hoist::start(&registry)?;
    Ok(Env { hoist, registry })
}

/// The size of a file on disk (a raw body's `bytes_received`).
pub(crate) fn file_size(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path)?.len())
}

/// Pushes `archive` raw to `path_and_query` on a fresh registry and verifies the result.
pub(crate) fn push_and_verify(
    fx: &Fixture,
    archive: &str,
    path_and_query: &str,
    expect: Expect,
) -> Result<Value> {
    let env = env()?;
    let file = fx.path(archive);
    let answer = push_file(&env.hoist, path_and_query, &file)?;
    let expect = Expect {
        body_size: Some(file_size(&file)?),
        ..expect
    };
    verify(&env.registry, fx, &answer, &expect)
}
