//! Names for objects created with `metadata.generateName` (upstream's
//! `storage/names.SimpleNameGenerator`).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// Longest name a generated name may have.
pub const MAX_NAME_LENGTH: usize = 63;
/// Number of random characters appended to the base.
pub const RANDOM_LENGTH: usize = 5;
/// Longest base kept before the random suffix.
pub const MAX_GENERATED_NAME_LENGTH: usize = MAX_NAME_LENGTH - RANDOM_LENGTH;

/// Upstream's alphabet: lower-case consonants and digits without vowels or look-alikes,
/// so generated names never spell words.
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `base` (cut to 58 bytes) followed by five random characters, e.g. `web-x7k2p`.
pub fn generate_name(base: &str) -> String {
    generate_name_with(base, random_u64)
}

/// [`generate_name`] drawing randomness from `next` (tests pass a fixed sequence).
pub fn generate_name_with(base: &str, mut next: impl FnMut() -> u64) -> String {
    let mut cut = base.len().min(MAX_GENERATED_NAME_LENGTH);
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut name = String::with_capacity(cut + RANDOM_LENGTH);
    name.push_str(&base[..cut]);
    let mut added = 0;
    while added < RANDOM_LENGTH {
        // Like upstream: take 5-bit chunks and skip those past the alphabet's end, so
        // every character is equally likely.
        let mut bits = next();
        for _ in 0..12 {
            let idx = (bits & 0x1f) as usize;
            bits >>= 5;
            if let Some(&c) = ALPHANUMS.get(idx) {
                name.push(char::from(c));
                added += 1;
                if added == RANDOM_LENGTH {
                    break;
                }
            }
        }
    }
    name
}

/// A random 64-bit value from the standard library's randomly keyed hasher, mixed with a
/// process-wide counter so successive calls differ. Not cryptographic (neither is
/// upstream's), but unpredictable across processes.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    RandomState::new().hash_one(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_five_characters_from_upstream_alphabet() {
        let name = generate_name("web-");
        assert_eq!(name.len(), 9);
        assert!(name.starts_with("web-"));
        assert!(name[4..].bytes().all(|c| ALPHANUMS.contains(&c)), "{name}");
    }

    #[test]
    fn long_bases_are_cut_so_the_name_fits_in_63_characters() {
        let base = "a".repeat(100);
        let name = generate_name(&base);
        assert_eq!(name.len(), 63);
        assert!(name.starts_with(&"a".repeat(58)));
    }

    #[test]
    fn successive_names_differ() {
        let names: std::collections::BTreeSet<String> =
            (0..50).map(|_| generate_name("x-")).collect();
        assert!(names.len() > 45, "{names:?}");
    }

    #[test]
    fn chunks_past_the_alphabet_are_skipped() {
        // 31 is past the 27-letter alphabet; 0 is 'b', 1 is 'c' (chunk 1 is 0).
        let v = 31 | (1 << 10) | (31 << 15) | (2 << 20) | (3 << 25) | (4 << 30);
        let mut calls = 0;
        let name = generate_name_with("p-", || {
            calls += 1;
            v
        });
        assert_eq!(name, "p-bcdfg");
        assert_eq!(calls, 1);
    }

    #[test]
    fn multibyte_bases_are_cut_on_a_character_boundary() {
        let base = format!("{}é", "a".repeat(57));
        let name = generate_name(&base);
        assert!(name.starts_with(&"a".repeat(57)));
        assert_eq!(name.len(), 62);
    }
}
