//! Identifiers and access codes from a cryptographically secure source: they are what keeps one
//! user's session from being guessed by another (contract 4.1, 5.1).

use rand::Rng;
use uuid::Uuid;

/// A new random (v4) id for a service or a data record. `uuid`'s `v4` draws from `getrandom`
/// (the OS CSPRNG), with the `fast-rng` feature from `rand`'s thread RNG (ChaCha, OS-seeded).
pub fn new_id() -> Uuid {
    Uuid::new_v4()
}

/// The access codes a coded reservation may get: the `len`-digit codes (leading zeros kept)
/// whose value is one of `count` from `low` on. Every code of a length is `low: 0, count:
/// 10^len`; `gms.server.access_code_prefix` narrows it to the codes that start with its digits
/// (a literal prefix or a range of first digits: either is one run of values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeSpace {
    /// Digits in a code.
    pub len: u8,
    /// The smallest code, as a number.
    pub low: u64,
    /// How many codes there are (at least 1).
    pub count: u64,
}

impl CodeSpace {
    /// Every code of `len` digits (1 to 12).
    pub fn all(len: u8) -> CodeSpace {
        CodeSpace {
            len,
            low: 0,
            count: 10u64.pow(u32::from(len)),
        }
    }

    /// A code value drawn at random, uniformly.
    pub fn random(&self) -> u64 {
        // ThreadRng is a CSPRNG (ChaCha12) reseeded from the OS.
        self.low + rand::thread_rng().gen_range(0..self.count)
    }

    /// The `k`-th code after `v` (wrapping within the space), for a walk to a free one.
    pub fn after(&self, v: u64, k: u64) -> u64 {
        self.low + (v.saturating_sub(self.low) + k) % self.count
    }

    /// A code value written with its `len` digits.
    pub fn format(&self, v: u64) -> String {
        format!("{v:0len$}", len = usize::from(self.len))
    }
}

/// A random access code from `space`, written out.
pub fn access_code(space: &CodeSpace) -> String {
    space.format(space.random())
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
            let c = access_code(&CodeSpace::all(len));
            assert_eq!(c.len(), len as usize);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn a_narrowed_space_keeps_its_codes_in_it() {
        // The 4-digit codes that start with 7, 8 or 9.
        let space = CodeSpace {
            len: 4,
            low: 7000,
            count: 3000,
        };
        for _ in 0..200 {
            let c = access_code(&space);
            assert!(matches!(c.as_bytes()[0], b'7'..=b'9'), "{c}");
        }
        assert_eq!(space.after(9999, 1), 7000);
        assert_eq!(space.after(7000, 2), 7002);
        assert_eq!(CodeSpace::all(3).format(7), "007");
    }

    #[test]
    fn ids_parse_back_and_junk_does_not() {
        let id = new_id();
        assert_eq!(parse_id(&id.to_string()), Some(id));
        assert_eq!(parse_id("../etc/passwd"), None);
        assert_eq!(parse_id(&id.simple().to_string()), None);
    }
}
