//! A Debian 12 machine whose PID 1 is systemd, for the systemd tier: the
//! root tree `.ci/systemd-root` builds, booted by `systemd-nspawn` with a
//! private network (loopback only, so its ports 80 and 443 are its own).
//! An overlay keeps each container's changes in its own folder, so the tree
//! stays as built and containers can run side by side. The repository is
//! bound read-only at its own path: the tool and this test binary run
//! inside unchanged, and the test's steps inside the machine are this
//! binary's `systemd::inside` test, told which phase to run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::Sandbox;

/// Set inside the container: the phase of the scenario to run.
pub const PHASE: &str = "OLLAMA_SECURE_CONTAINER_PHASE";

pub struct Container {
    nspawn: Option<Child>,
    /// The container's PID 1 (systemd), as the host sees it.
    leader: i32,
    merged: PathBuf,
    name: String,
    binds: Vec<PathBuf>,
    /// This container's own cgroup in each hierarchy systemd uses.
    cgroups: Vec<PathBuf>,
    // Dropped last: holds the overlay's folders.
    dir: Sandbox,
}

fn sh_ok(command: &mut Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Container {
    /// Boots a new machine from the root tree and waits until systemd says
    /// it is up.
    pub fn boot(root: &Path, name: &str) -> Container {
        assert!(root.join(".ollama-secure-root").exists(), "{} is not a tree .ci/systemd-root built", root.display());
        let dir = Sandbox::new();
        let (upper, work, merged) = (dir.mkdir("upper"), dir.mkdir("work"), dir.mkdir("merged"));
        let options = format!("lowerdir={},upperdir={},workdir={}", root.display(), upper.display(), work.display());
        sh_ok(
            Command::new("mount").args(["-t", "overlay", "overlay", "-o", &options]).arg(&merged),
            "mounting the container's overlay",
        );
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut binds = vec![manifest.clone()];
        for exe in [std::env::current_exe().unwrap(), PathBuf::from(env!("CARGO_BIN_EXE_ollama-secure"))] {
            let folder = exe.parent().unwrap().to_path_buf();
            if !folder.starts_with(&manifest) && !binds.contains(&folder) {
                binds.push(folder);
            }
        }
        let cgroups = own_cgroups(&format!("ollama-secure-{name}-{}", std::process::id()));
        let mut container = Container { nspawn: None, leader: 0, merged, name: name.to_string(), binds, cgroups, dir };
        container.start();
        container
    }

    fn start(&mut self) {
        // Every boot's console, one after the other.
        let log = fs::OpenOptions::new().create(true).append(true).open(self.dir.path("console.log")).unwrap();
        // nspawn (`--keep-unit`) keeps the container's systemd in the cgroup
        // it was started in. Started in the test's, two containers at once
        // would share one tree (`payload/system.slice/...`), and each
        // systemd removes and creates the other's unit cgroups: units then
        // fail at random with 219/CGROUP. So each starts in its own.
        let mut nspawn = Command::new("sh");
        nspawn
            .arg("-c")
            .arg(r#"for procs in $OLLAMA_SECURE_CGROUPS; do echo $$ > "$procs/cgroup.procs"; done; exec systemd-nspawn "$@""#)
            .arg("sh")
            .env("OLLAMA_SECURE_CGROUPS", self.cgroups.iter().map(|c| c.display().to_string()).collect::<Vec<_>>().join(" "))
            .arg("--directory")
            .arg(&self.merged)
            .args(["--register=no", "--keep-unit", "--console=pipe", "--private-network", "--boot"])
            // nspawn names its runtime folders after the machine (else the
            // folder's name, the same for every container): one per container.
            .arg(format!("--machine=ollama-secure-{}-{}", self.name, std::process::id()))
            .arg(format!("--hostname={}", self.name));
        for bind in &self.binds {
            nspawn.arg(format!("--bind-ro={}", bind.display()));
        }
        let child = nspawn
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("systemd-nspawn runs (apt-get install systemd-container)");
        let nspawn_pid = child.id();
        self.nspawn = Some(child);
        let started = Instant::now();
        self.leader = loop {
            let children =
                fs::read_to_string(format!("/proc/{nspawn_pid}/task/{nspawn_pid}/children")).unwrap_or_default();
            let systemd = children
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
                .find(|pid| fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "systemd"));
            if let Some(pid) = systemd {
                break pid;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the container's systemd did not start: {}",
                self.console()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        // `--wait` returns once boot is over: running, or degraded if a unit failed.
        loop {
            let out = self.run("systemctl", &["is-system-running", "--wait"]);
            let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
            match state.as_str() {
                "running" => return,
                "degraded" => panic!("the container booted degraded: {}\n{}", self.failed_units(), self.console()),
                _ if started.elapsed() < Duration::from_secs(120) => std::thread::sleep(Duration::from_millis(200)),
                _ => panic!("the container did not finish booting ({state}): {}", self.console()),
            }
        }
    }

    /// The failed units, and what they logged.
    fn failed_units(&self) -> String {
        let list = self.run("systemctl", &["--failed", "--no-pager", "--plain", "--no-legend", "--full"]);
        let list = String::from_utf8_lossy(&list.stdout).into_owned();
        let mut report = list.clone();
        for unit in list.lines().filter_map(|l| l.split_whitespace().next()) {
            let log = self.run("journalctl", &["--no-pager", "--boot", "--unit", unit]);
            report.push_str(&String::from_utf8_lossy(&log.stdout));
        }
        report
    }

    fn console(&self) -> String {
        fs::read_to_string(self.dir.path("console.log")).unwrap_or_default()
    }

    /// Runs a program inside, as root, with a clean environment.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["--target", &self.leader.to_string(), "--all", "--", "env", "-i"])
            .args(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter runs")
    }

    /// Runs one phase of a scenario inside: this test binary, with only the
    /// `systemd::inside` test, which reads the phase from the environment.
    pub fn phase(&self, phase: &str) {
        let exe = std::env::current_exe().unwrap();
        let exe = exe.to_str().unwrap();
        let phase_env = format!("{PHASE}={phase}");
        let out = self.run(
            "env",
            &[&phase_env, "CI=true", exe, "--exact", "systemd::inside", "--nocapture", "--test-threads", "1"],
        );
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "phase {phase} failed in the container:\n{stdout}\n{stderr}");
        assert!(stdout.contains("test result: ok. 1 passed"), "phase {phase} did not run:\n{stdout}\n{stderr}");
    }

    /// Powers the machine off (systemd stops every unit, as at a real
    /// shutdown) and boots it again from the same disk.
    pub fn reboot(&mut self) {
        self.power_off();
        self.start();
    }

    /// nspawn turns SIGTERM into a clean shutdown of the container.
    fn power_off(&mut self) {
        let Some(mut child) = self.nspawn.take() else { return };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.power_off();
        let _ = Command::new("umount").arg(&self.merged).status();
        for cgroup in &self.cgroups {
            remove_cgroup(cgroup);
        }
    }
}

/// Makes a cgroup named `name` under this process's own, in the named
/// `systemd` hierarchy (cgroup v1 and hybrid) and the unified one (cgroup
/// v2), where each is mounted.
fn own_cgroups(name: &str) -> Vec<PathBuf> {
    let membership = fs::read_to_string("/proc/self/cgroup").unwrap();
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    let mut cgroups = Vec::new();
    for line in membership.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next()) else { continue };
        let mount = mounts.lines().find_map(|m| {
            let f: Vec<&str> = m.split_whitespace().collect();
            let wanted = match controllers {
                "" => f.get(2) == Some(&"cgroup2"),
                "name=systemd" => {
                    f.get(2) == Some(&"cgroup") && f.get(3).is_some_and(|o| o.split(',').any(|o| o == "name=systemd"))
                }
                _ => false,
            };
            wanted.then(|| PathBuf::from(f[1]))
        });
        if let Some(mount) = mount {
            let cgroup = mount.join(path.trim_start_matches('/')).join(name);
            fs::create_dir_all(&cgroup).unwrap_or_else(|e| panic!("making the cgroup {}: {e}", cgroup.display()));
            cgroups.push(cgroup);
        }
    }
    assert!(!cgroups.is_empty(), "no systemd or unified cgroup hierarchy is mounted:\n{membership}");
    cgroups
}

/// A cgroup goes with rmdir, its children first, once no process is left.
fn remove_cgroup(cgroup: &Path) {
    if let Ok(entries) = fs::read_dir(cgroup) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&entry.path());
            }
        }
    }
    let _ = fs::remove_dir(cgroup);
}
