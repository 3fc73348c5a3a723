//! `relec run` as a user starts it, from the repository's root, with every listener on a
//! free loopback port; killed when the test ends, however it ends.

#![allow(dead_code)] // each test file uses its own part

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc, Mutex,
        mpsc::{self, Receiver},
    },
    time::{Duration, Instant},
};

/// The repository's root: `relec run` finds `rules/pack` and the example subscriptions
/// there, as it does for a user who runs it from a fresh clone.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// A running `relec run`; its standard output arrives line by line, its standard error
/// is kept for failure messages.
pub struct Relec {
    child: Child,
    lines: Receiver<String>,
    stdout: Vec<String>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Relec {
    pub fn run(args: &[&str]) -> Self {
        Self::run_with_env(args, &[])
    }

    /// [`Relec::run`] with further environment variables (`RELEC_...` config overrides).
    pub fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_relec"))
            .arg("run")
            .args(args)
            .current_dir(root())
            .env_remove("RELEC_CONFIG")
            .env_remove("RUST_LOG")
            .env("RELEC_TELEMETRY__LISTEN", "127.0.0.1:0")
            .env("RELEC_INGEST__LISTEN", "127.0.0.1:0")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start relec run");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (err, kept) = (child.stderr.take().expect("stderr"), stderr.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                kept.lock().expect("lock").push(line);
            }
        });
        Self {
            child,
            lines,
            stdout: Vec::new(),
            stderr,
        }
    }

    /// The first line (from the start) that `wanted` accepts, waiting at most `within`.
    pub fn line(&mut self, wanted: impl Fn(&str) -> bool, within: Duration) -> Option<String> {
        if let Some(seen) = self.stdout.iter().find(|l| wanted(l)) {
            return Some(seen.clone());
        }
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let line = self.lines.recv_timeout(left).ok()?;
            self.stdout.push(line.clone());
            if wanted(&line) {
                return Some(line);
            }
        }
        None
    }

    /// Waits at most `within` for the process to end by itself.
    pub fn wait(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // What it printed last is read to the end.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
                    self.stdout.push(line);
                }
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Ctrl-C, as a user stops it.
    pub fn interrupt(&self) {
        let sent = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill -INT");
        assert!(sent.success(), "kill -INT failed");
    }

    /// Everything it printed so far on standard output and standard error.
    pub fn everything(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.stdout.push(line);
        }
        let stderr = self.stderr.lock().expect("lock");
        format!("{}\n{}", self.stdout.join("\n"), stderr.join("\n"))
    }

    /// What it printed so far, and the end of its logs: for failure messages.
    pub fn output(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.stdout.push(line);
        }
        let stderr = self.stderr.lock().expect("lock");
        let tail = &stderr[stderr.len().saturating_sub(30)..];
        format!(
            "--- stdout\n{}\n--- stderr (last lines)\n{}",
            self.stdout.join("\n"),
            tail.join("\n")
        )
    }
}

impl Drop for Relec {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
