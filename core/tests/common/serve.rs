//! `roomcast serve` in its own process, as a user runs it; killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

pub struct Serve {
    child: Child,
    pub addr: SocketAddr,
    /// The log line that announced the address.
    #[allow(dead_code)]
    pub announced: String,
}

impl Serve {
    /// Start `roomcast serve --listen 127.0.0.1:0 <args>` and wait for the
    /// address it announces on stdout.
    pub fn start(args: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_roomcast"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn roomcast");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // "roomcast serving http://127.0.0.1:PORT/ ..."
        let addr = loop {
            let line = rx.recv_timeout(Duration::from_secs(20)).expect("server announces its address");
            if let Some(rest) = line.split("serving http://").nth(1) {
                break (rest.split('/').next().expect("address").parse().expect("socket address"), line);
            }
        };
        let (addr, announced) = addr;
        Serve { child, addr, announced }
    }

    /// Send a signal (`-TERM`, `-KILL`, `-STOP`, `-CONT`).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill").args([sig, &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    /// Wait for the process to exit.
    pub fn wait(&mut self) -> ExitStatus {
        self.child.wait().expect("wait")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
