//! Any sequence of add, remove and rotate keeps the htpasswd file one that
//! Apache's `htpasswd -v` reads: every present user verifies with their
//! current password, removed and replaced passwords do not, and the lines
//! added by hand stay as they were.

use std::collections::BTreeMap;
use std::fs;

use ollama_secure::credentials::{SeededEntropy, generate_password, hash_password};
use ollama_secure::fields::Username;
use ollama_secure::secret::Secret;
use ollama_secure::userfile::{Format, Users};

use crate::support::{Sandbox, sh};

fn verifies(path: &str, user: &str, password: &str) -> bool {
    sh("htpasswd", &["-vb", path, user, password]).0
}

#[test]
fn random_edit_sequences_keep_the_file_readable_by_apache() {
    let sandbox = Sandbox::new();
    let path = sandbox.path("ollama.htpasswd");
    let path_text = path.to_str().unwrap().to_string();
    let (_, apr1) = sh("htpasswd", &["-nbm", "hand", "hand password"]);
    let hand = format!("# kept by hand\n{}\n\n", apr1.trim());
    let mut rng = SeededEntropy(0xC0FFEE);
    let mut byte = || {
        let mut b = [0u8; 1];
        ollama_secure::credentials::Entropy::fill(&mut rng, &mut b);
        b[0]
    };
    let mut entropy = SeededEntropy(7);
    let mut file = Users::parse(&hand, Format::Htpasswd, "h").unwrap().unwrap();
    let mut known: BTreeMap<String, Secret> = BTreeMap::new();
    let mut retired: Vec<(String, Secret)> = Vec::new();
    let names = ["ann", "ben", "cy", "dee", "eve"];
    for step in 0..40 {
        let name = names[byte() as usize % names.len()].to_string();
        match byte() % 3 {
            // add or rotate: same edit, new password
            0 | 1 => {
                let password = generate_password(&mut entropy);
                file.set(&Username::parse(&name).unwrap(), &hash_password(&password, 4, &mut entropy).unwrap());
                if let Some(old) = known.insert(name.clone(), password) {
                    retired.push((name.clone(), old));
                }
            }
            _ => {
                if file.remove(&name) {
                    retired.push((name.clone(), known.remove(&name).unwrap()));
                }
            }
        }
        fs::write(&path, file.text()).unwrap();
        let text = file.text();
        assert!(text.starts_with(&hand), "step {step}: the hand-made lines changed:\n{text}");
        assert!(verifies(&path_text, "hand", "hand password"), "step {step}: the apr1 user stopped verifying");
        for (user, password) in &known {
            assert!(verifies(&path_text, user, password.expose()), "step {step}: {user} does not verify:\n{text}");
        }
        for (user, password) in &retired {
            if known.get(user) != Some(password) {
                assert!(
                    !verifies(&path_text, user, password.expose()),
                    "step {step}: a retired password of {user} still verifies"
                );
            }
        }
        // And our own parser reads back what it wrote.
        let reread = Users::parse(&text, Format::Htpasswd, "h").unwrap().unwrap();
        assert_eq!(reread.len(), known.len() + 1);
    }
}
