//! Secret comparison in constant time.
//!
//! The time taken depends only on the length of the configured secret and
//! the number of secrets, never on how many leading bytes of a guess match.

use core::hint::black_box;

/// True when `candidate` equals `secret`, comparing every byte of `secret`
/// whatever the candidate holds.
pub fn ct_eq(candidate: &[u8], secret: &[u8]) -> bool {
    let mut diff: u64 = (candidate.len() ^ secret.len()) as u64;
    for (i, s) in secret.iter().enumerate() {
        // Past the candidate's end compare against a byte that never
        // matches in a way the optimiser cannot see through.
        let c = candidate.get(i).copied().unwrap_or(!*s);
        diff |= u64::from(black_box(c ^ s));
    }
    black_box(diff) == 0
}

/// True when `candidate` equals any of `secrets`; every secret is compared,
/// with no early exit.
pub fn matches_any(candidate: &[u8], secrets: &[String]) -> bool {
    let mut found = false;
    for secret in secrets {
        found |= ct_eq(candidate, secret.as_bytes());
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn equal_only_when_every_byte_and_the_length_match() {
        let cases: &[(&[u8], &[u8], bool)] = &[
            (b"s3cret", b"s3cret", true),
            (b"s3cre", b"s3cret", false),
            (b"s3cret!", b"s3cret", false),
            (b"S3cret", b"s3cret", false),
            (b"", b"s3cret", false),
            (b"s3cret\0", b"s3cret", false),
            (b"", b"", true),
        ];
        for (candidate, secret, want) in cases {
            assert_eq!(
                ct_eq(candidate, secret),
                *want,
                "{candidate:?} vs {secret:?}"
            );
        }
    }

    #[test]
    fn any_of_several_for_rotation() {
        let secrets = vec!["old-one".to_string(), "new-one".to_string()];
        assert!(matches_any(b"old-one", &secrets));
        assert!(matches_any(b"new-one", &secrets));
        assert!(!matches_any(b"other", &secrets));
        assert!(!matches_any(b"new-one", &[]));
    }
}
