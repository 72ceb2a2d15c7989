//! A raw HTTP/1.1 client: sends bytes no well-behaved client would (invalid UTF-8 in the
//! request target, dot segments, bodies larger than the server accepts) and reads whatever
//! comes back.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request: its target and headers as raw bytes, and a body.
pub struct Raw {
    pub method: &'static str,
    pub target: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Body,
}

/// How the body is sent.
pub enum Body {
    None,
    /// With `Content-Length`.
    Bytes(Vec<u8>),
    /// In chunks of 64 KiB, `Transfer-Encoding: chunked` (no length announced).
    Chunked(Vec<u8>),
    /// `Content-Length: n`, and nothing sent: the server must refuse on the header alone.
    Claimed(usize),
}

/// What came back.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: serde_json::Value,
}

impl Raw {
    pub fn new(method: &'static str, target: impl Into<Vec<u8>>) -> Raw {
        Raw {
            method,
            target: target.into(),
            headers: Vec::new(),
            body: Body::None,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Raw {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn json(self, body: impl Into<Vec<u8>>) -> Raw {
        self.header("content-type", "application/json").body(body)
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Raw {
        self.body = Body::Bytes(body.into());
        self
    }

    pub fn chunked(mut self, body: Vec<u8>) -> Raw {
        self.body = Body::Chunked(body);
        self
    }

    pub fn claimed(mut self, len: usize) -> Raw {
        self.body = Body::Claimed(len);
        self
    }

    fn bytes(self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&self.target);
        out.extend_from_slice(b" HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        match self.body {
            Body::None => out.extend_from_slice(b"\r\n"),
            Body::Bytes(body) => {
                out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
                out.extend_from_slice(&body);
            }
            Body::Chunked(body) => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
                for chunk in body.chunks(64 * 1024) {
                    out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
            }
            Body::Claimed(len) => {
                out.extend_from_slice(format!("content-length: {len}\r\n\r\n").as_bytes())
            }
        }
        out
    }

    /// Sends the request to `addr` (`host:port`) on a connection of its own and reads the
    /// answer. The request is written while the answer is read: a server that answers
    /// before reading a large body all the way is heard.
    pub async fn send(self, addr: &str) -> Option<Reply> {
        let stream = TcpStream::connect(addr).await.expect("connects");
        let (mut read, mut write) = stream.into_split();
        let request = self.bytes();
        let writer = tokio::spawn(async move {
            // The server may close early (it refused the body): not an error here.
            let _ = write.write_all(&request).await;
            write
        });
        let mut answer = Vec::new();
        let mut buf = vec![0_u8; 64 * 1024];
        let read_all = async {
            // Read until the server closes (`connection: close`), keeping what arrived
            // before a reset.
            while let Ok(n) = read.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                answer.extend_from_slice(&buf[..n]);
            }
        };
        // A server that answered but keeps the connection open (or never answers) is
        // judged on what arrived within the time.
        let _ = tokio::time::timeout(Duration::from_secs(10), read_all).await;
        writer.abort();
        parse(&answer)
    }
}

/// The status and JSON body of a raw answer (`Value::Null` for a body that is not JSON or
/// not sent with a length); `None` when no status line came back.
fn parse(answer: &[u8]) -> Option<Reply> {
    let text = String::from_utf8_lossy(answer);
    let status = text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(serde_json::Value::Null);
    Some(Reply { status, body })
}
