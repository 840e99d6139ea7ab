//! Shared data as the engine sees it: one value per key with a version,
//! and a compare-and-swap set. The host implements it with proxy-wasm
//! shared data (every worker of an Envoy shares it); [`MemStore`] is the
//! same contract in memory, for tests, the simulator and the fuzzer.

use std::collections::HashMap;

/// Why a set was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The value changed since the version given was read.
    CasMismatch,
    /// Any other refusal by the host, with its status code.
    Host(u32),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::CasMismatch => f.write_str("changed meanwhile (compare-and-swap)"),
            StoreError::Host(code) => write!(f, "host status {code}"),
        }
    }
}

/// Shared data with compare-and-swap, with Envoy's semantics: `get`
/// gives the value and its version; `set` with `Some(version)` fails when
/// the value changed since, but a key that does not exist yet is created
/// whatever the version (so keys that are swapped are created first).
pub trait Store {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError>;
}

/// An in-memory [`Store`].
#[derive(Debug, Default, Clone)]
pub struct MemStore {
    entries: HashMap<String, (Vec<u8>, u32)>,
    next: u32,
}

impl MemStore {
    pub fn new() -> MemStore {
        MemStore::default()
    }

    /// Every key and value, for inspection.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries
            .iter()
            .map(|(k, (v, _))| (k.as_str(), v.as_slice()))
    }
}

impl Store for MemStore {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        match self.entries.get(key) {
            Some((v, cas)) => (Some(v.clone()), Some(*cas)),
            None => (None, None),
        }
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        self.next = self.next.wrapping_add(1).max(1);
        let version = self.next;
        match self.entries.get_mut(key) {
            Some(entry) => {
                if cas.is_some_and(|c| c != entry.1) {
                    return Err(StoreError::CasMismatch);
                }
                *entry = (value.to_vec(), version);
            }
            None => {
                self.entries
                    .insert(key.to_string(), (value.to_vec(), version));
            }
        }
        Ok(())
    }
}
