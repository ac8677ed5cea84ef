//! Passwords: generated ones, bcrypt hashes of them, and checking a
//! password against a hash. Randomness comes through `Entropy`, so tests
//! and snapshots can make it repeatable.

use crate::error::{Error, Result};
use crate::secret::Secret;

/// Randomness for salts and generated passwords. Tests use a seeded one so
/// hashes in snapshots are stable.
pub trait Entropy {
    fn fill(&mut self, buf: &mut [u8]);
}

pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        getrandom::fill(buf).expect("the operating system's random number generator failed");
    }
}

/// Deterministic entropy (xorshift64*) for tests and snapshots only.
pub struct SeededEntropy(pub u64);

impl Entropy for SeededEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        for byte in buf {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            *byte = (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8;
        }
    }
}

const PASSWORD_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// 24 characters from 62: log2(62^24) ≈ 142.9 bits.
pub const GENERATED_LENGTH: usize = 24;

/// A strong password of letters and digits (nothing a shell or a config file
/// would treat specially, so it survives copy and paste).
pub fn generate_password(entropy: &mut dyn Entropy) -> Secret {
    let mut out = String::with_capacity(GENERATED_LENGTH);
    let mut byte = [0u8; 1];
    while out.len() < GENERATED_LENGTH {
        entropy.fill(&mut byte);
        // Rejection sampling: 248 = 4 × 62, so every character is equally likely.
        if byte[0] < 248 {
            out.push(PASSWORD_ALPHABET[(byte[0] % 62) as usize] as char);
        }
    }
    Secret::new(out)
}

pub fn hash_password(password: &Secret, cost: u32, entropy: &mut dyn Entropy) -> Result<String> {
    let mut salt = [0u8; 16];
    entropy.fill(&mut salt);
    bcrypt::hash_with_salt(password.expose(), cost, salt)
        .map(|parts| parts.format_for_version(bcrypt::Version::TwoY))
        .map_err(|e| Error::failed(format!("hashing a password failed: {e}")))
}

/// True when `password` matches `hash`. Unknown or malformed hashes don't match.
pub fn verify(password: &Secret, hash: &str) -> bool {
    bcrypt::verify(password.expose(), hash).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_and_from_the_alphabet() {
        let mut e = SeededEntropy(7);
        let a = generate_password(&mut e);
        let b = generate_password(&mut e);
        assert_eq!(a.len(), GENERATED_LENGTH);
        assert!(a.expose().bytes().all(|c| PASSWORD_ALPHABET.contains(&c)));
        assert_ne!(a, b);
    }
}
