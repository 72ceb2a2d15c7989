//! An application whose dependency graph compiles rustls with aws-lc-rs (rustls's default),
//! on the tiered store over `rediss://`. Starts a private redis-server speaking TLS with a
//! self-signed certificate (needs `openssl` and `redis-server` on the PATH), then:
//!
//! 1. before any provider is installed, the cache's builder refuses the `rediss://` URL with
//!    an error that says what to do (querycache's `redis` feature picks no provider, and
//!    nothing panics at the first handshake);
//! 2. once the application installs aws-lc-rs, a miss, a hit from Redis, an invalidation
//!    (the write), and a miss again, all over TLS.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use querycache::config::StoreKind;
use querycache::{Cache, EntryOptions, Tag};

/// The private server, stopped on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start_tls_server(dir: &std::path::Path) -> Result<(Server, u16), Box<dyn std::error::Error>> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()?;
    if !made.success() {
        return Err("openssl could not make a test certificate".into());
    }
    let port = free_port()?;
    let server = Server(
        Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--tls-port")
            .arg(port.to_string())
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(&cert)
            .args(["--tls-auth-clients", "no"])
            .stdout(Stdio::null())
            .spawn()?,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!("redis-server did not listen on {port} within 20 s").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((server, port))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("qc-rustls-aws-lc-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (_server, port) = start_tls_server(&dir)?;
    let url = format!("rediss://127.0.0.1:{port}/#insecure");
    let build = || {
        Cache::builder()
            .redis_url(url.clone())
            .store(StoreKind::Redis)
            .redis_timeout(Duration::from_secs(2))
            .build()
    };

    let refused = match build() {
        Ok(_) => return Err("no provider is installed, yet the rediss:// cache was built".into()),
        Err(error) => error.to_string(),
    };
    println!("without a provider: {refused}");
    assert!(refused.contains("REDIS_URL"), "{refused}");
    assert!(refused.contains("install_default"), "{refused}");

    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .map_err(|_| "a provider was already installed")?;
    let cache = build()?;
    let runs = AtomicUsize::new(0);
    let read = async || {
        let options = EntryOptions::new().tags([Tag::row("songs", "7")]);
        cache
            .get_or_compute("song:7", options, async || {
                runs.fetch_add(1, Ordering::SeqCst);
                "Blue in Green".to_owned()
            })
            .await
    };
    read().await;
    read().await;
    let stats = cache.stats();
    println!(
        "miss then hit: {} queries, {} Redis hits",
        runs.load(Ordering::SeqCst),
        stats.redis_hits
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the second read is a hit");
    assert_eq!(stats.redis_hits, 1, "served by Redis, over TLS");
    assert_eq!(stats.errors, 0);
    cache.invalidate_tags([Tag::row("songs", "7")]).await; // the write
    read().await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "the write invalidated the entry"
    );
    let _ = std::fs::remove_dir_all(&dir);
    println!("ok: rediss:// with the application's aws-lc-rs provider");
    Ok(())
}
