//! Moving JSON-RPC messages to and from an app-server: lines over a child's stdio, or text
//! frames over a WebSocket. Both end up as the same pair of channels, so the client above does
//! not know which one it talks to.
//!
//! Closing: dropping [`Connection::outbound`] closes the child's stdin (the app-server exits on
//! EOF) or sends a WebSocket close frame. The inbound channel reports [`Inbound::Closed`] once,
//! when stdout ends or the socket closes.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::agent::{AgentError, AgentSpec};

/// How many stderr lines are kept for the exit reason.
const STDERR_TAIL_LINES: usize = 20;

/// After SIGTERM, how long the process group gets before SIGKILL.
const TERM_TO_KILL: Duration = Duration::from_secs(1);

/// Something that arrived from the app-server.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// One JSON message (not yet parsed).
    Message(String),
    /// The stream ended; nothing follows.
    Closed(String),
}

pub(crate) struct Connection {
    /// One JSON message per item, without the line terminator.
    pub outbound: mpsc::UnboundedSender<String>,
    pub inbound: mpsc::UnboundedReceiver<Inbound>,
    /// The child, when baton started it.
    pub process: Option<Process>,
}

/// The app-server child and what it said on stderr.
pub(crate) struct Process {
    child: Child,
    /// The child leads its own process group (`process_group(0)`), whose id is its pid.
    pid: u32,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The last stderr lines, oldest first.
    pub fn stderr_tail(&self) -> Vec<String> {
        lock(&self.stderr_tail).iter().cloned().collect()
    }

    /// Waits up to `grace` for the child to leave by itself, then SIGTERMs and finally SIGKILLs
    /// its process group, reaps it, and kills what is left of the group (commands the agent
    /// started run in it). Returns how it ended.
    pub async fn stop(&mut self, grace: Duration) -> String {
        let status = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                signal_group(self.pid, "TERM").await;
                match tokio::time::timeout(TERM_TO_KILL, self.child.wait()).await {
                    Ok(status) => status,
                    Err(_) => {
                        signal_group(self.pid, "KILL").await;
                        let _ = self.child.start_kill();
                        self.child.wait().await
                    }
                }
            }
        };
        // Grandchildren (sandboxed commands) may outlive the app-server; the group id stays
        // theirs while any of them lives, so this cannot hit an unrelated process group.
        signal_group(self.pid, "KILL").await;
        match status {
            Ok(s) => s.to_string(),
            Err(e) => format!("could not be waited for: {e}"),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sends `signal` to the process group `pgid` with kill(1): the workspace forbids `unsafe`, and
/// tokio's `Child::start_kill` reaches only the leader.
async fn signal_group(pgid: u32, signal: &str) {
    let result = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    if let Err(e) = result {
        tracing::warn!(pgid, signal, "could not run kill: {e}");
    }
}

/// Starts `spec.command` in `cwd` with `spec.env` added.
pub(crate) fn spawn(spec: &AgentSpec, cwd: &Path) -> Result<Connection, AgentError> {
    let spawn_error = |reason: String| AgentError::Spawn {
        agent: spec.name.clone(),
        reason,
    };
    let (program, args) = spec
        .command
        .split_first()
        .ok_or_else(|| spawn_error("no command given".into()))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(cwd)
        // Values are never logged: they may be API keys.
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Its own group, so stopping it also stops the commands it runs.
        .process_group(0);
    let mut child = command
        .spawn()
        .map_err(|e| spawn_error(format!("{program}: {e}")))?;
    let pid = child
        .id()
        .ok_or_else(|| spawn_error("exited at once".into()))?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(spawn_error("no stdio pipes".into()));
    };

    let (outbound, mut out_rx) = mpsc::unbounded_channel::<String>();
    let (in_tx, inbound) = mpsc::unbounded_channel();

    tokio::spawn(async move {
        let mut stdin = stdin;
        while let Some(mut line) = out_rx.recv().await {
            line.push('\n');
            if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                break;
            }
        }
        // Dropping stdin here is the EOF that makes the app-server exit.
    });

    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let reason = loop {
            match lines.next_line().await {
                Ok(Some(line)) if line.trim().is_empty() => {}
                Ok(Some(line)) => {
                    if in_tx.send(Inbound::Message(line)).is_err() {
                        return;
                    }
                }
                Ok(None) => break "the app-server closed its output".to_string(),
                Err(e) => break format!("reading the app-server's output failed: {e}"),
            }
        };
        let _ = in_tx.send(Inbound::Closed(reason));
    });

    let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
    let tail = stderr_tail.clone();
    let name = spec.name.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::debug!(agent = %name, "stderr: {line}");
            let mut tail = lock(&tail);
            if tail.len() == STDERR_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    });

    Ok(Connection {
        outbound,
        inbound,
        process: Some(Process {
            child,
            pid,
            stderr_tail,
        }),
    })
}

/// Connects to an app-server listening on `url` (`ws://host:port`).
pub(crate) async fn connect(name: &str, url: &str) -> Result<Connection, AgentError> {
    let (socket, _) =
        tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| AgentError::Spawn {
                agent: name.to_string(),
                reason: format!("could not connect to {url}: {e}"),
            })?;
    let (mut sink, mut stream) = socket.split();
    let (outbound, mut out_rx) = mpsc::unbounded_channel::<String>();
    let (in_tx, inbound) = mpsc::unbounded_channel();

    tokio::spawn(async move {
        while let Some(text) = out_rx.recv().await {
            if sink.send(Message::Text(text.into())).await.is_err() {
                return;
            }
        }
        let _ = sink.send(Message::Close(None)).await;
        let _ = sink.close().await;
    });

    tokio::spawn(async move {
        let reason = loop {
            match stream.next().await {
                Some(Ok(Message::Text(text))) => {
                    if in_tx.send(Inbound::Message(text.to_string())).is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Binary(bytes))) => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    if in_tx.send(Inbound::Message(text)).is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    break match frame {
                        Some(f) if !f.reason.is_empty() => {
                            format!("the app-server closed the connection: {}", f.reason)
                        }
                        _ => "the app-server closed the connection".to_string(),
                    };
                }
                // Pings are answered by tungstenite itself.
                Some(Ok(_)) => {}
                Some(Err(e)) => break format!("the connection failed: {e}"),
                None => break "the connection ended".to_string(),
            }
        };
        let _ = in_tx.send(Inbound::Closed(reason));
    });

    Ok(Connection {
        outbound,
        inbound,
        process: None,
    })
}
