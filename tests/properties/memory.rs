//! A memory bound for every property: the test binary's allocator counts every byte, and
//! while a property runs an allocation beyond its budget fails, which aborts the process, so
//! a parser that tries to buffer what an input merely claims fails its property loudly.

use std::alloc::System;
use std::sync::{Mutex, MutexGuard};

use cap::Cap;

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// Properties run one at a time (nextest runs one test per process anyway; under `cargo
/// test` they would share the count).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The budget while it lives; back to no limit when dropped.
pub struct Budget {
    _one: MutexGuard<'static, ()>,
}

/// Lets the current property hold at most `bytes` more than is held now.
pub fn budget(bytes: usize) -> Budget {
    let one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    ALLOCATOR
        .set_limit(ALLOCATOR.allocated() + bytes)
        .expect("a limit above what is allocated");
    Budget { _one: one }
}

impl Drop for Budget {
    fn drop(&mut self) {
        let _ = ALLOCATOR.set_limit(usize::MAX);
    }
}

#[test]
fn the_budget_is_enforced() {
    // The bound is real: within a budget, a larger allocation is refused (tried fallibly,
    // as an abort would end the test binary).
    let _b = budget(8 << 20);
    let mut v: Vec<u8> = Vec::new();
    assert!(v.try_reserve_exact(64 << 20).is_err());
    assert!(v.try_reserve_exact(1 << 20).is_ok());
}
