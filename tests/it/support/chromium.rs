//! Headless Chromium driven over the DevTools protocol, for tests of pages the crate serves.
//!
//! [`Chromium::launch`] starts `/usr/bin/chromium --headless=new --remote-debugging-port=0`
//! with a profile in a temporary directory, reads the `DevTools listening on ws://...` line
//! from its stderr, and connects to the browser endpoint. [`Chromium::new_page`] opens a tab
//! (`Target.createTarget`) and attaches to it with a flattened session; a [`Page`] sends
//! commands to that session and records its JS exceptions (`Runtime.exceptionThrown`) and
//! console messages.
//!
//! The browser runs in a process group of its own, killed on Drop — also when the test
//! panics — so no renderer outlives the test. Without Chromium, [`Chromium::launch`]
//! returns `None` after saying why, unless `QUERYCACHE_REQUIRE_SERVICES=1`, where it panics.
//!
//! Waiting is polling with a deadline ([`Page::wait_for`]), never a fixed sleep.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use super::services;

/// Where Debian's `chromium` package installs the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// How long the browser has to print its DevTools endpoint.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long one DevTools command may take (the machine is shared and small).
const COMMAND_DEADLINE: Duration = Duration::from_secs(30);

type Reply = Result<Value, Value>;

/// What the connection's reader task shares with the callers.
#[derive(Default)]
struct Shared {
    /// Replies awaited, by command id.
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    /// Every event received, with its `sessionId` (if any).
    events: Mutex<Vec<Value>>,
}

/// One DevTools WebSocket connection (the browser endpoint; pages are flattened sessions).
struct Connection {
    outgoing: mpsc::UnboundedSender<String>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
}

impl Connection {
    async fn open(url: &str) -> Connection {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .unwrap_or_else(|e| panic!("connect to the DevTools endpoint {url}: {e}"));
        let (mut sink, mut stream) = socket.split();
        let shared = Arc::new(Shared::default());
        let (outgoing, mut to_send) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(text) = to_send.recv().await {
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
        });
        let reader = Arc::clone(&shared);
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                if let Some(id) = value.get("id").and_then(Value::as_u64) {
                    let waiter = reader.pending.lock().unwrap().remove(&id);
                    if let Some(waiter) = waiter {
                        let reply = match value.get("error") {
                            Some(error) => Err(error.clone()),
                            None => Ok(value.get("result").cloned().unwrap_or(Value::Null)),
                        };
                        let _ = waiter.send(reply);
                    }
                } else {
                    reader.events.lock().unwrap().push(value);
                }
            }
            // The browser went away: fail every waiter rather than leave it hanging.
            for (_, waiter) in reader.pending.lock().unwrap().drain() {
                let _ = waiter.send(Err(json!({"message": "DevTools connection closed"})));
            }
        });
        Connection {
            outgoing,
            shared,
            next_id: AtomicU64::new(1),
        }
    }

    /// Sends `method` (to `session`, if any) and waits for its reply.
    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let (tx, rx) = oneshot::channel();
        self.shared.pending.lock().unwrap().insert(id, tx);
        self.outgoing
            .send(message.to_string())
            .unwrap_or_else(|_| panic!("{method}: DevTools connection closed"));
        match tokio::time::timeout(COMMAND_DEADLINE, rx).await {
            Ok(Ok(Ok(result))) => result,
            Ok(Ok(Err(error))) => panic!("{method} failed: {error}"),
            Ok(Err(_)) => panic!("{method}: DevTools connection closed"),
            Err(_) => panic!("{method}: no reply within {COMMAND_DEADLINE:?}"),
        }
    }
}

/// A headless Chromium, killed (with its whole process group) on Drop.
pub struct Chromium {
    connection: Arc<Connection>,
    process: Process,
}

/// The browser process, its stderr tail and profile directory; killed on Drop.
struct Process {
    child: Child,
    stderr_tail: Arc<Mutex<Vec<String>>>,
    _profile: tempfile::TempDir,
}

impl Process {
    fn stderr_tail(&self) -> String {
        self.stderr_tail.lock().unwrap().join("\n")
    }
}

impl Chromium {
    /// Starts the browser and connects to it; `None` (after saying why) when Chromium is
    /// not installed, unless `QUERYCACHE_REQUIRE_SERVICES=1`.
    pub async fn launch() -> Option<Chromium> {
        if !Path::new(CHROMIUM).exists() {
            return services::unavailable(format!(
                "{CHROMIUM} not found (Debian package `chromium`)"
            ));
        }
        let profile = tempfile::tempdir().expect("temporary profile directory");
        let mut child = Command::new(CHROMIUM)
            .args([
                "--headless=new",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-sync",
                "--disable-component-update",
                "--mute-audio",
                "--window-size=1280,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group, so that Drop can take the renderers down with it.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {CHROMIUM}: {e}"));

        // A thread reads stderr for the whole run (a full pipe would block the browser),
        // hands over the endpoint, and keeps the tail for failure messages.
        let stderr = child.stderr.take().expect("piped stderr");
        let stderr_tail = Arc::new(Mutex::new(Vec::new()));
        let (endpoint_tx, endpoint_rx) = std::sync::mpsc::channel();
        let tail = Arc::clone(&stderr_tail);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = endpoint_tx.send(url.trim().to_owned());
                }
                let mut tail = tail.lock().unwrap();
                tail.push(line);
                if tail.len() > 50 {
                    tail.remove(0);
                }
            }
        });
        let endpoint =
            tokio::task::spawn_blocking(move || endpoint_rx.recv_timeout(START_DEADLINE))
                .await
                .expect("endpoint reader");
        // From here on, a panic drops `process`, which kills the browser.
        let process = Process {
            child,
            stderr_tail,
            _profile: profile,
        };
        let endpoint = endpoint.unwrap_or_else(|_| {
            panic!(
                "Chromium printed no DevTools endpoint within {START_DEADLINE:?}; stderr:\n{}",
                process.stderr_tail()
            )
        });
        let connection = Arc::new(Connection::open(&endpoint).await);
        Some(Chromium {
            connection,
            process,
        })
    }

    /// The last lines Chromium wrote on stderr.
    pub fn stderr_tail(&self) -> String {
        self.process.stderr_tail()
    }

    /// A new tab on `about:blank`, with the Page and Runtime domains enabled.
    pub async fn new_page(&self) -> Page {
        let target = self
            .connection
            .call(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let target_id = target["targetId"].as_str().expect("targetId").to_owned();
        let attached = self
            .connection
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
            )
            .await;
        let session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_owned();
        let page = Page {
            connection: Arc::clone(&self.connection),
            session,
        };
        page.call("Page.enable", json!({})).await;
        page.call("Runtime.enable", json!({})).await;
        page
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // The whole group: the browser, its zygote and renderers (started by us, with the
        // group id of the browser's pid).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One tab, as a flattened DevTools session.
pub struct Page {
    connection: Arc<Connection>,
    session: String,
}

impl Page {
    /// Sends a command to this tab and returns its result (panics on a protocol error).
    pub async fn call(&self, method: &str, params: Value) -> Value {
        self.connection
            .call(Some(&self.session), method, params)
            .await
    }

    /// Loads `url` and waits until the document has loaded.
    pub async fn navigate(&self, url: &str) {
        let result = self.call("Page.navigate", json!({"url": url})).await;
        if let Some(error) = result.get("errorText") {
            panic!("navigate to {url}: {error}");
        }
        self.wait_for(
            "document.readyState === 'complete' && location.href !== 'about:blank'",
            Duration::from_secs(30),
        )
        .await;
    }

    /// Evaluates `expression` in the page (promises awaited) and returns its value.
    pub async fn eval(&self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        if let Some(details) = result.get("exceptionDetails") {
            panic!("evaluating `{expression}` threw: {details}");
        }
        result["result"]["value"].clone()
    }

    /// Polls `expression` until it is truthy; panics with the page's text after `deadline`.
    pub async fn wait_for(&self, expression: &str, deadline: Duration) -> Value {
        let until = Instant::now() + deadline;
        loop {
            let value = self
                .eval(&format!(
                    "(() => {{ try {{ return ({expression}); }} catch (_) {{ return null; }} }})()"
                ))
                .await;
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            if Instant::now() > until {
                let text = self
                    .eval("document.body ? document.body.innerText : ''")
                    .await;
                panic!(
                    "`{expression}` still false after {deadline:?}; exceptions: {:?}; console: {:?}; page text:\n{}",
                    self.exceptions(),
                    self.console(),
                    text.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the centre of the element `selector` with real mouse events
    /// (`Input.dispatchMouseEvent`), after scrolling it into view.
    pub async fn click(&self, selector: &str) {
        let selector_js = serde_json::to_string(selector).unwrap();
        let rect = self
            .eval(&format!(
                "(() => {{ const el = document.querySelector({selector_js}); if (!el) return null; \
                 el.scrollIntoView({{block: 'center', inline: 'center'}}); \
                 const r = el.getBoundingClientRect(); return {{x: r.x + r.width / 2, y: r.y + r.height / 2}}; }})()"
            ))
            .await;
        assert!(rect.is_object(), "no element matches {selector}");
        let (x, y) = (rect["x"].clone(), rect["y"].clone());
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "buttons": 1, "clickCount": 1}),
            )
            .await;
        }
    }

    /// Clicks the input `selector`, selects what it holds, and types `text` over it
    /// (`Input.insertText`: the page sees `input` events as from a keyboard).
    pub async fn type_into(&self, selector: &str, text: &str) {
        self.click(selector).await;
        let selector_js = serde_json::to_string(selector).unwrap();
        self.eval(&format!("document.querySelector({selector_js}).select()"))
            .await;
        self.call("Input.insertText", json!({"text": text})).await;
    }

    /// The text of the element `selector` (`null` when there is none).
    pub async fn text(&self, selector: &str) -> String {
        let selector_js = serde_json::to_string(selector).unwrap();
        self.eval(&format!(
            "(document.querySelector({selector_js}) || {{}}).textContent ?? null"
        ))
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    fn events(&self, method: &str) -> Vec<Value> {
        self.connection
            .shared
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["sessionId"] == self.session.as_str() && e["method"] == method)
            .map(|e| e["params"].clone())
            .collect()
    }

    /// The uncaught JS exceptions of this tab so far, as text.
    pub fn exceptions(&self) -> Vec<String> {
        self.events("Runtime.exceptionThrown")
            .iter()
            .map(|p| {
                let details = &p["exceptionDetails"];
                details["exception"]["description"]
                    .as_str()
                    .or(details["text"].as_str())
                    .unwrap_or("?")
                    .to_owned()
            })
            .collect()
    }

    /// The console messages of this tab so far (`type: text`).
    pub fn console(&self) -> Vec<String> {
        self.events("Runtime.consoleAPICalled")
            .iter()
            .map(|p| {
                let args: Vec<String> = p["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| a["value"].to_string())
                    .collect();
                format!("{}: {}", p["type"].as_str().unwrap_or("?"), args.join(" "))
            })
            .collect()
    }
}
