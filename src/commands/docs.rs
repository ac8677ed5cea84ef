//! `generate-docs` (hidden): the man pages (clap_mangen) and shell
//! completions (clap_complete), made from the clap definitions themselves,
//! so that they never drift from `--help`. The package build runs it.

use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::cli::{Cli, GenerateDocsArgs};
use crate::error::{Error, Result};
use crate::system::{Ownership, System};

/// The name users type; the man pages of subcommands are `NAME-SUB`.
const NAME: &str = "ollama-secure";

/// Every page: `ollama-secure.1`, then one per subcommand, nested ones too
/// (`ollama-secure-users-add.1`), hidden ones left out.
fn man_pages(command: &clap::Command, name: &str, pages: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone().name(name.to_string())).render(&mut page)?;
    pages.push((format!("{name}.1"), page));
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, &format!("{name}-{}", sub.get_name()), pages)?;
    }
    Ok(())
}

/// The command as users see it: without the hidden subcommands, which
/// clap_complete would otherwise offer (and clap has no way to remove one).
fn public(command: &clap::Command) -> clap::Command {
    let mut public = clap::Command::new(command.get_name().to_string());
    public = public.args(command.get_arguments().cloned());
    if let Some(about) = command.get_about() {
        public = public.about(about.clone());
    }
    if let Some(about) = command.get_long_about() {
        public = public.long_about(about.clone());
    }
    if let Some(after) = command.get_after_help() {
        public = public.after_help(after.clone());
    }
    if let Some(version) = command.get_version() {
        public = public.version(version.to_string());
    }
    public.subcommands(command.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}

/// Without clap's `help` subcommands, at every level: the pages would
/// list `help` pages that are not made (`--help` is on each page).
fn without_help(command: clap::Command) -> clap::Command {
    let names: Vec<String> = command.get_subcommands().map(|s| s.get_name().to_string()).collect();
    names.iter().fold(command.disable_help_subcommand(true), |command, name| command.mut_subcommand(name, without_help))
}

/// What `generate-docs` writes, by path below `--out`.
pub fn files() -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut for_pages = without_help(public(&Cli::command()));
    for_pages.build();
    let mut pages = Vec::new();
    man_pages(&for_pages, NAME, &mut pages)?;
    let mut command = public(&Cli::command());
    command.build();
    let mut files: Vec<(PathBuf, Vec<u8>)> =
        pages.into_iter().map(|(page, text)| (Path::new("man").join(page), text)).collect();
    use clap_complete::Shell;
    for (shell, file) in
        [(Shell::Bash, "ollama-secure.bash"), (Shell::Zsh, "_ollama-secure"), (Shell::Fish, "ollama-secure.fish")]
    {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut command, NAME, &mut script);
        files.push((Path::new("completions").join(file), script));
    }
    Ok(files)
}

pub fn run(args: GenerateDocsArgs, system: &dyn System) -> Result<()> {
    let files = files().map_err(|e| Error::failed(format!("cannot make the man pages: {e}")))?;
    let me = Ownership { mode: 0o644, uid: nix::unistd::geteuid().as_raw(), gid: nix::unistd::getegid().as_raw() };
    for (relative, content) in &files {
        let path = args.out.join(relative);
        super::render::create_dirs(system, path.parent().expect("below --out"))?;
        system.write_atomic(&path, content, me).map_err(|e| Error::io("cannot write", &path, e))?;
        crate::say!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_for_every_command_and_a_script_for_each_shell() {
        let files = files().unwrap();
        let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
        for expected in [
            "man/ollama-secure.1",
            "man/ollama-secure-init.1",
            "man/ollama-secure-users-add.1",
            "man/ollama-secure-keys-new.1",
            "man/ollama-secure-uninstall.1",
            "completions/ollama-secure.bash",
            "completions/_ollama-secure",
            "completions/ollama-secure.fish",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
        }
        assert!(!names.iter().any(|n| n.contains("generate-docs")), "the hidden command has a page: {names:?}");
        assert!(!names.iter().any(|n| n.contains("-help")), "clap's help command has a page: {names:?}");
        // The exit codes, on the main page as in --help.
        let main = &files.iter().find(|(p, _)| p.ends_with("ollama-secure.1")).unwrap().1;
        assert!(String::from_utf8_lossy(main).contains("Exit codes"), "{}", String::from_utf8_lossy(main));
        let init = &files.iter().find(|(p, _)| p.ends_with("ollama-secure-init.1")).unwrap().1;
        let init = String::from_utf8_lossy(init);
        // The flags, with the help --help shows.
        assert!(init.contains("\\-\\-answers") && init.contains("standard input"), "{init}");
        let bash = &files.iter().find(|(p, _)| p.ends_with("ollama-secure.bash")).unwrap().1;
        assert!(String::from_utf8_lossy(bash).contains("--save-answers"));
        for (path, text) in &files {
            let text = String::from_utf8_lossy(text);
            assert!(!text.contains("generate-docs"), "{} offers the hidden command", path.display());
            if path.starts_with("man") {
                assert!(!text.contains("\\-help("), "{} points at a help page not made", path.display());
            }
        }
    }
}
