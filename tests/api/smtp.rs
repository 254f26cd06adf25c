//! A real SMTP server on loopback that keeps what it receives, and can go down and come back.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;

/// One message as the server received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub to: Vec<String>,
    pub data: Vec<u8>,
}

impl Received {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default().parse(&self.data).expect("a valid message")
    }
}

pub struct SmtpSink {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    tasks: Option<JoinSet<()>>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        SmtpSink::start_on("127.0.0.1:0".parse().expect("address"), Arc::default()).await
    }

    fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(128)
    }

    async fn start_on(addr: SocketAddr, received: Arc<Mutex<Vec<Received>>>) -> SmtpSink {
        let listener = SmtpSink::listen(addr).expect("bind the SMTP sink");
        let addr = listener.local_addr().expect("address");
        let mut tasks = JoinSet::new();
        let store = received.clone();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(session(stream, store.clone()));
            }
        });
        SmtpSink { addr, received, tasks: Some(tasks) }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Refuses every connection from now on, dropping those open.
    pub fn stop(&mut self) {
        if let Some(mut tasks) = self.tasks.take() {
            tasks.abort_all();
        }
    }

    /// Comes back on the same port, keeping what it had received.
    pub async fn restart(&mut self) {
        self.stop();
        tokio::time::sleep(Duration::from_millis(50)).await;
        *self = SmtpSink::start_on(self.addr, self.received.clone()).await;
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits until at least `n` messages have arrived, then a moment more for any extra.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        while self.received().len() < n {
            assert!(tokio::time::Instant::now() < deadline, "only {} of {n} emails arrived", self.received().len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.received()
    }
}

async fn session(stream: TcpStream, store: Arc<Mutex<Vec<Received>>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut to = Vec::new();
    if write.write_all(b"220 sink ESMTP\r\n").await.is_err() {
        return;
    }
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") {
            b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if command.starts_with("RCPT TO:") {
            to.push(line.trim_end()[8..].trim_matches(|c| c == '<' || c == '>' || c == ' ').to_owned());
            b"250 OK\r\n"
        } else if command.starts_with("DATA") {
            if write.write_all(b"354 go ahead\r\n").await.is_err() {
                return;
            }
            let mut data = Vec::new();
            loop {
                let mut chunk = Vec::new();
                if lines.read_until(b'\n', &mut chunk).await.unwrap_or(0) == 0 {
                    return;
                }
                if chunk == b".\r\n" {
                    break;
                }
                let unstuffed = if chunk.starts_with(b"..") { &chunk[1..] } else { &chunk[..] };
                data.extend_from_slice(unstuffed);
            }
            store.lock().expect("lock").push(Received { to: std::mem::take(&mut to), data });
            b"250 OK queued\r\n"
        } else if command.starts_with("QUIT") {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else if command.starts_with("RSET") {
            to.clear();
            b"250 OK\r\n"
        } else if ["HELO", "MAIL FROM:", "NOOP"].iter().any(|c| command.starts_with(c)) {
            b"250 OK\r\n"
        } else {
            b"502 not implemented\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
