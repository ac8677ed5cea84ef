//! Runs a planned `Command`. The only place the tool starts processes for a
//! plan; apply goes through the `Runner` trait so tests can fake failures.

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek};

use crate::plan::{Command, Output};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    pub success: bool,
    /// What the command printed (stdout and stderr), or where it went.
    pub output: String,
}

pub trait Runner {
    fn run(&mut self, command: &Command) -> RunOutput;
}

pub struct ProcessRunner;

impl Runner for ProcessRunner {
    fn run(&mut self, command: &Command) -> RunOutput {
        let mut expression = duct::cmd(&command.program, &command.args).stdin_null().unchecked();
        for (key, value) in &command.env {
            expression = expression.env(key, value);
        }
        // Output goes to files, never pipes: `nginx` and `caddy start` leave
        // daemons behind that inherit the descriptors and would keep a pipe
        // open forever.
        let (file, log_path) = match &command.output {
            Output::Capture => match tempfile::tempfile() {
                Ok(f) => (f, None),
                Err(e) => return RunOutput { success: false, output: format!("cannot create a temporary file: {e}") },
            },
            Output::LogFile(path) => {
                if let Some(dir) = path.parent() {
                    let _ = fs::create_dir_all(dir);
                }
                match OpenOptions::new().create(true).append(true).open(path) {
                    Ok(f) => (f, Some(path.clone())),
                    Err(e) => {
                        return RunOutput { success: false, output: format!("cannot open {}: {e}", path.display()) };
                    }
                }
            }
        };
        let writer = match file.try_clone() {
            Ok(w) => w,
            Err(e) => return RunOutput { success: false, output: e.to_string() },
        };
        let result = expression.stderr_to_stdout().stdout_file(writer).run();
        let output = match log_path {
            Some(path) => format!("(output in {})", path.display()),
            None => {
                let mut text = String::new();
                let mut file = file;
                let _ = file.rewind().and_then(|_| file.read_to_string(&mut text));
                text
            }
        };
        match result {
            Ok(o) => RunOutput { success: o.status.success(), output },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => RunOutput {
                success: false,
                output: format!("{} is not installed (command not found)", command.program),
            },
            Err(e) => RunOutput { success: false, output: format!("could not run {}: {e}", command.program) },
        }
    }
}
