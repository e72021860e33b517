//! Identifiers and access codes from a cryptographically secure source: they are what keeps one
//! user's session from being guessed by another (contract 4.1, 5.1).

use rand::Rng;
use uuid::Uuid;

/// A new random (v4) id for a service or a data record. `uuid`'s `v4` draws from `getrandom`
/// (the OS CSPRNG), with the `fast-rng` feature from `rand`'s thread RNG (ChaCha, OS-seeded).
pub fn new_id() -> Uuid {
    Uuid::new_v4()
}

/// A random access code of `len` decimal digits (leading zeros kept).
pub fn access_code(len: u8) -> String {
    // ThreadRng is a CSPRNG (ChaCha12) reseeded from the OS.
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// Parses an id given in a URL: only the canonical hyphenated form the gateway hands out.
pub fn parse_id(s: &str) -> Option<Uuid> {
    if s.len() != 36 {
        return None;
    }
    Uuid::try_parse(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_asked_length_and_only_digits() {
        for len in 1..=12 {
            let c = access_code(len);
            assert_eq!(c.len(), len as usize);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn ids_parse_back_and_junk_does_not() {
        let id = new_id();
        assert_eq!(parse_id(&id.to_string()), Some(id));
        assert_eq!(parse_id("../etc/passwd"), None);
        assert_eq!(parse_id(&id.simple().to_string()), None);
    }
}
