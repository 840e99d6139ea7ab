//! The proxy-wasm ABI (version 0.2.1) as meshprobe's host layer uses it,
//! in place of the Rust SDK: safe calls into the host, and the two exports
//! every module needs. No dispatcher, no context objects, no logger: the
//! host layer exports the callbacks it implements and nothing else (Envoy
//! enters the VM only for exported callbacks), and routes every call's
//! answer itself.
//!
//! Every call returns the host's status instead of panicking on one it did
//! not expect (the SDK panics, which in a Wasm VM is a trap that fails
//! every request through that Envoy). Buffers the host returns were
//! allocated through [`proxy_on_memory_allocate`]; their ownership passes
//! to the caller, as a `Vec<u8>`.

#[cfg(target_arch = "wasm32")]
mod calls;
#[cfg(target_arch = "wasm32")]
pub use calls::*;

/// The host's status codes (`WasmResult`).
pub mod status {
    pub const OK: u32 = 0;
    pub const NOT_FOUND: u32 = 1;
    pub const CAS_MISMATCH: u32 = 8;
}

/// A callback's answer to the host: go on, or hold the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Action {
    Continue = 0,
    Pause = 1,
}

/// The host buffers meshprobe reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Buffer {
    HttpRequestBody = 0,
    HttpCallResponseBody = 4,
    GrpcReceive = 5,
    PluginConfiguration = 7,
}

/// The header maps meshprobe reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Map {
    HttpRequestHeaders = 0,
    HttpCallResponseHeaders = 6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum LogLevel {
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

/// The kinds of metric, as the host numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum MetricType {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

/// The host's serialized form of a header map: the number of pairs, each
/// pair's key and value sizes (little-endian u32), then each key and value
/// followed by a NUL.
/// Pairs whose sizes add up past the address space (one string can be in
/// many pairs) give the map of no pairs.
pub fn serialize_map<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Vec<u8> {
    let size = pairs.iter().try_fold(4usize, |n, (k, v)| {
        n.checked_add(k.as_ref().len())?
            .checked_add(v.as_ref().len())?
            .checked_add(10)
    });
    let Some(size) = size else {
        return vec![0; 4];
    };
    let mut out = Writer::zeroed(size);
    // SAFETY: `size` is 4 for the count and, per pair, 8 for the sizes,
    // the key, the value and a NUL after each (its 10): what is put here.
    unsafe {
        out.put(&len(pairs.len()), 0);
        for (k, v) in pairs {
            out.put(&len(k.as_ref().len()), 0);
            out.put(&len(v.as_ref().len()), 0);
        }
        for (k, v) in pairs {
            out.put(k.as_ref().as_bytes(), 1);
            out.put(v.as_ref().as_bytes(), 1);
        }
    }
    out.out
}

/// A little-endian u32 of a length (the host's maps count in u32).
fn len(n: usize) -> [u8; 4] {
    u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes()
}

/// A serialized map being written: zeroed at its final size, so the NULs
/// are in place, then each part copied to its place with one
/// `memory.copy` (a reply's headers are serialized for every probe
/// answered, or its `Age` added).
struct Writer {
    out: Vec<u8>,
    at: *mut u8,
}

impl Writer {
    /// A map of `size` bytes: what the caller then puts.
    fn zeroed(size: usize) -> Writer {
        let mut out = vec![0; size];
        let at = out.as_mut_ptr();
        Writer { out, at }
    }

    /// `bytes` at the next place, then `gap` zero bytes.
    ///
    /// # Safety
    /// The parts put and their gaps must add up to no more than the size
    /// the map was made with.
    unsafe fn put(&mut self, bytes: &[u8], gap: usize) {
        // SAFETY: the caller's promise: `bytes` and `gap` lie inside `out`.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.at, bytes.len());
            self.at = self.at.add(bytes.len() + gap);
        }
    }
}

/// A serialized header map with the pair `key: value` after its own
/// (`map` as [`serialize_map`] writes it); `map` itself when malformed.
pub fn with_pair(map: &[u8], key: &str, value: &str) -> Vec<u8> {
    let parts = map.split_first_chunk::<4>().and_then(|(count, rest)| {
        let count = u32::from_le_bytes(*count);
        let (sizes, strings) =
            rest.split_at_checked(usize::try_from(count).ok()?.checked_mul(8)?)?;
        let size = map.len().checked_add(key.len())?.checked_add(value.len())?;
        Some((count.checked_add(1)?, sizes, strings, size.checked_add(10)?))
    });
    let Some((count, sizes, strings, size)) = parts else {
        return map.to_vec();
    };
    let mut out = Writer::zeroed(size);
    // SAFETY: `size` is `map`'s bytes (the count, `sizes` and `strings`),
    // 8 for the new pair's sizes, its key, its value and a NUL after each.
    unsafe {
        out.put(&count.to_le_bytes(), 0);
        out.put(sizes, 0);
        out.put(&len(key.len()), 0);
        out.put(&len(value.len()), 0);
        out.put(strings, 0);
        out.put(key.as_bytes(), 1);
        out.put(value.as_bytes(), 1);
    }
    out.out
}

/// The value of header `name` in a serialized header map (as
/// [`serialize_map`] writes it and the host returns it): the first one,
/// as the host's own lookup gives. `None` when absent or when the map is
/// malformed.
pub fn map_value<'a>(map: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let word = |b: Option<&[u8; 4]>| b.map(|b| u32::from_le_bytes(*b) as usize);
    let (count, rest) = map.split_first_chunk::<4>()?;
    let (sizes, mut data) = rest.split_at_checked(word(Some(count))?.checked_mul(8)?)?;
    for size in sizes.chunks_exact(8) {
        let (k, v) = (word(size.first_chunk())?, word(size.last_chunk())?);
        let (key, rest) = data.split_at_checked(k)?;
        let (value, rest) = rest.get(1..)?.split_at_checked(v)?;
        if key == name.as_bytes() {
            return Some(value);
        }
        data = rest.get(1..)?;
    }
    None
}

/// The host's serialized form of a property path: its parts joined by NUL.
pub fn serialize_path(path: &[&str]) -> Vec<u8> {
    path.join("\0").into_bytes()
}

/// The ABI version this module speaks (the host looks for this export).
#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// The host allocates the buffers it hands over in the module's memory
/// through this export; the module owns them after (as a `Vec<u8>`).
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut buffer = std::mem::ManuallyDrop::new(Vec::<u8>::with_capacity(size));
    buffer.as_mut_ptr()
}

/// The module's start (the host calls it first): its constructors, and
/// a panic hook that logs the panic as critical before the VM traps.
#[cfg(target_os = "wasi")]
#[no_mangle]
pub extern "C" fn _initialize() {
    extern "C" {
        fn __wasm_call_ctors();
    }
    // SAFETY: the constructors the linker collected, run once, first.
    unsafe { __wasm_call_ctors() };
    std::panic::set_hook(Box::new(|p| log(LogLevel::Critical, &p.to_string())));
}

/// The VM started: nothing to do (its configuration is the plugin's).
#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_root: u32, _size: usize) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_is_sizes_then_nul_terminated_strings() {
        let bytes = serialize_map(&[(":path", "/x"), ("a", "")]);
        let mut want = vec![2, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(b":path\0/x\0a\0\0");
        assert_eq!(bytes, want);
        assert_eq!(serialize_map::<&str, &str>(&[]), vec![0, 0, 0, 0]);
    }

    #[test]
    fn a_pair_added_to_a_map_comes_last() {
        let map = serialize_map(&[(":path", "/x"), ("a", "")]);
        let with = with_pair(&map, "age", "12");
        assert_eq!(
            with,
            serialize_map(&[(":path", "/x"), ("a", ""), ("age", "12")])
        );
        let empty = serialize_map::<&str, &str>(&[]);
        assert_eq!(
            with_pair(&empty, "age", "0"),
            serialize_map(&[("age", "0")])
        );
        // A malformed map is left as it is.
        assert_eq!(with_pair(&[1, 0], "age", "0"), vec![1, 0]);
        assert_eq!(with_pair(&[9, 0, 0, 0, 1], "age", "0"), vec![9, 0, 0, 0, 1]);
    }

    #[test]
    fn a_value_is_found_in_a_serialized_map() {
        let map = serialize_map(&[(":path", "/x"), ("accept", ""), ("a", "1"), ("a", "2")]);
        assert_eq!(map_value(&map, ":path"), Some(&b"/x"[..]));
        assert_eq!(map_value(&map, "accept"), Some(&b""[..]));
        assert_eq!(map_value(&map, "a"), Some(&b"1"[..]), "the first of two");
        assert_eq!(map_value(&map, "b"), None);
        assert_eq!(map_value(&serialize_map::<&str, &str>(&[]), "a"), None);
        for cut in 0..map.len() {
            // Never past the end: a short map finds what it can.
            let _ = map_value(&map[..cut], "a");
        }
        // ... "a\0" "1\0" "a\0" "2\0": cut into the first "1", it is gone.
        assert_eq!(map_value(&map[..map.len() - 5], "a"), Some(&b"1"[..]));
        assert_eq!(map_value(&map[..map.len() - 6], "a"), None);
        assert_eq!(map_value(&[255, 255, 255, 255], "a"), None);
        // A key or value said to run past the end (or, on 32 bits, past
        // the address space: the same checked arithmetic) is not there.
        let long_key = [1, 0, 0, 0, 255, 255, 255, 255, 1, 0, 0, 0, b'a', 0, b'1', 0];
        assert_eq!(map_value(&long_key, "a"), None);
        let long_value = [1, 0, 0, 0, 1, 0, 0, 0, 255, 255, 255, 255, b'a', 0, b'1', 0];
        assert_eq!(map_value(&long_value, "a"), None);
    }

    #[test]
    fn a_path_is_joined_by_nul() {
        assert_eq!(serialize_path(&["source", "address"]), b"source\0address");
        assert_eq!(serialize_path(&[]), b"");
    }

    #[test]
    fn allocated_buffers_have_the_asked_capacity() {
        let p = proxy_on_memory_allocate(16);
        assert!(!p.is_null());
        // SAFETY: allocated above as a Vec<u8> of capacity 16.
        let v = unsafe { Vec::from_raw_parts(p, 0, 16) };
        assert_eq!(v.capacity(), 16);
    }
}
