//! Per-client concurrency: one client (a CI runner, say) may hold at most
//! `max_pushes_per_client` pushes at once, so it cannot take every slot of the gateway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Pushes in flight per client name.
pub struct ClientSlots {
    max: usize,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

/// One push's slot; released on drop.
pub struct ClientSlot {
    name: String,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

impl ClientSlots {
    /// At most `max` pushes per client.
    pub fn new(max: usize) -> ClientSlots {
        ClientSlots {
            max,
            held: Arc::default(),
        }
    }

    /// The limit per client.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot for `client`, or `None` when it already holds `max`.
    pub fn try_take(&self, client: &str) -> Option<ClientSlot> {
        let mut held = self.held.lock().expect("slots lock");
        let n = held.entry(client.to_string()).or_default();
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            name: client.to_string(),
            held: self.held.clone(),
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut held = self.held.lock().expect("slots lock");
        if let Some(n) = held.get_mut(&self.name) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_holds_at_most_max_and_others_are_unaffected() {
        let slots = ClientSlots::new(2);
        let a1 = slots.try_take("a").unwrap();
        let _a2 = slots.try_take("a").unwrap();
        assert!(slots.try_take("a").is_none());
        let _b = slots.try_take("b").unwrap();
        drop(a1);
        assert!(slots.try_take("a").is_some());
        drop(_a2);
        assert!(slots.held.lock().unwrap().get("b").is_some());
    }
}
