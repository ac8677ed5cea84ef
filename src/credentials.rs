//! Users → bcrypt hashes. Reuses a hash already on the system when it still
//! matches, so that running `init` again with the same answers changes no file.

use std::collections::BTreeMap;

use crate::config::{CostPolicy, PasswordSource, UserSpec};
use crate::error::{Error, Result};
use crate::fields;
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub hash: String,
    /// A password this run generated: printed once at the end, never stored.
    pub generated: Option<Secret>,
}

/// Hashes every user's password. `existing` maps usernames to the hashes
/// currently installed (empty for a fresh system or `render`).
pub fn resolve(
    users: &[UserSpec],
    cost: CostPolicy,
    existing: &BTreeMap<String, String>,
    entropy: &mut dyn Entropy,
) -> Result<Vec<Credential>> {
    users.iter().map(|user| resolve_one(user, cost, existing.get(&user.username), entropy)).collect()
}

fn resolve_one(
    user: &UserSpec,
    cost: CostPolicy,
    existing: Option<&String>,
    entropy: &mut dyn Entropy,
) -> Result<Credential> {
    let credential = |hash: String, generated| Credential { username: user.username.clone(), hash, generated };
    match &user.password {
        PasswordSource::Hash(hash) => Ok(credential(hash.clone(), None)),
        // `generate` means "make sure this user has a generated password": an
        // existing user keeps theirs (rotation is `users rotate`).
        PasswordSource::Generate => match existing {
            Some(hash) => Ok(credential(hash.clone(), None)),
            None => {
                let password = generate_password(entropy);
                let hash = hash_password(&password, cost.for_generated(), entropy)?;
                Ok(credential(hash, Some(password)))
            }
        },
        PasswordSource::Given(password) => {
            let wanted_cost = cost.for_chosen();
            if let Some(hash) = existing
                && fields::bcrypt_cost_of(hash) == Some(wanted_cost)
                && verify(password, hash)
            {
                return Ok(credential(hash.clone(), None));
            }
            Ok(credential(hash_password(password, wanted_cost, entropy)?, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, password: PasswordSource) -> UserSpec {
        UserSpec { username: name.into(), password }
    }

    #[test]
    fn generated_passwords_are_long_and_from_the_alphabet() {
        let mut e = SeededEntropy(7);
        let a = generate_password(&mut e);
        let b = generate_password(&mut e);
        assert_eq!(a.len(), GENERATED_LENGTH);
        assert!(a.expose().bytes().all(|c| PASSWORD_ALPHABET.contains(&c)));
        assert_ne!(a, b);
    }

    #[test]
    fn hashes_verify_and_carry_the_policy_cost() {
        let cost = CostPolicy { fixed: None };
        let users = [
            user("alice", PasswordSource::Given(Secret::new("correct horse battery"))),
            user("carol", PasswordSource::Generate),
        ];
        let creds = resolve(&users, cost, &BTreeMap::new(), &mut SeededEntropy(1)).unwrap();
        assert!(creds[0].hash.starts_with("$2y$12$"), "{}", creds[0].hash);
        assert!(verify(&Secret::new("correct horse battery"), &creds[0].hash));
        assert!(!verify(&Secret::new("wrong"), &creds[0].hash));
        assert!(creds[1].hash.starts_with("$2y$05$"), "{}", creds[1].hash);
        assert!(verify(creds[1].generated.as_ref().unwrap(), &creds[1].hash));
    }

    #[test]
    fn matching_existing_hashes_are_kept() {
        let cost = CostPolicy { fixed: Some(4) };
        let pw = Secret::new("correct horse battery");
        let users = [user("alice", PasswordSource::Given(pw.clone())), user("carol", PasswordSource::Generate)];
        let first = resolve(&users, cost, &BTreeMap::new(), &mut SeededEntropy(1)).unwrap();
        let existing: BTreeMap<_, _> = first.iter().map(|c| (c.username.clone(), c.hash.clone())).collect();

        let again = resolve(&users, cost, &existing, &mut SeededEntropy(99)).unwrap();
        assert_eq!(again[0].hash, first[0].hash);
        assert_eq!(again[1].hash, first[1].hash);
        assert!(again.iter().all(|c| c.generated.is_none()), "nothing is generated again");

        let changed = [user("alice", PasswordSource::Given(Secret::new("a different password")))];
        let after = resolve(&changed, cost, &existing, &mut SeededEntropy(99)).unwrap();
        assert_ne!(after[0].hash, first[0].hash);
        assert!(verify(&Secret::new("a different password"), &after[0].hash));

        // A different cost policy re-hashes even when the password matches.
        let stronger = resolve(&users[..1], CostPolicy { fixed: Some(5) }, &existing, &mut SeededEntropy(3)).unwrap();
        assert!(stronger[0].hash.starts_with("$2y$05$"));
    }
}
