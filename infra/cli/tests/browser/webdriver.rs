//! A small W3C WebDriver client (the protocol is HTTP and JSON): enough to drive the distribution's
//! headless Chromium through its ChromeDriver in the dashboard tests.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

/// The key W3C WebDriver names an element reference by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where the distribution's packages put them (`apt-get install chromium chromium-driver`).
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A running ChromeDriver with one headless Chromium session; both end when it drops.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
}

impl Drop for Browser {
    /// Ends the session (ChromeDriver closes Chromium), then ChromeDriver and anything left in its
    /// process group: a killed driver would leave its browser running.
    fn drop(&mut self) {
        if let Some(rest) = self.session.strip_prefix("http://") {
            if let Some((host, path)) = rest.split_once('/') {
                use std::io::{Read, Write};
                if let Ok(mut c) = std::net::TcpStream::connect(host) {
                    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
                    let _ = write!(
                        c,
                        "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = c.read_to_end(&mut Vec::new());
                }
            }
        }
        // `kill -s KILL -- -<group>`, never `kill -KILL -<group>`: procps-ng 4.0.2 (Debian 12) reads
        // only the first digit of a group after a signal option, so `kill -KILL -13479` is
        // kill(-1, SIGKILL) and, run as root, ends every process on the machine.
        let group = self.driver.id();
        if group > 1 {
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{group}")])
                .status();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// An element of the page.
pub struct Element(String);

impl Browser {
    /// Starts ChromeDriver on `port` and a headless Chromium session of `width`×`height`, its console
    /// recorded.
    pub async fn start(port: u16, width: u32, height: u32) -> Browser {
        for needed in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(needed).exists(),
                "{needed} is missing: the README's test command installs the distribution's \
                 chromium and chromium-driver packages"
            );
        }
        // Its own process group, so that dropping the browser can end every process it started.
        use std::os::unix::process::CommandExt;
        let driver = Command::new(CHROMEDRIVER)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        // Every WebDriver command has a deadline: a Chromium that stops answering fails the test
        // with a reason instead of holding the test run.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(90))
            .build()
            .expect("an HTTP client");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = match http.get(format!("{base}/status")).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .ok()
                    .map(|v| v["value"]["ready"] == true),
                Err(_) => None,
            };
            if ready == Some(true) {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--disable-extensions", "--disable-background-networking",
                         format!("--window-size={width},{height}")]
            },
            "goog:loggingPrefs": {"browser": "ALL"}
        }}});
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"))
            .to_string();
        Browser {
            driver,
            http,
            session: format!("{base}/session/{session}"),
        }
    }

    async fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.session);
        let request = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        let value = answer["value"].clone();
        if let Some(error) = value.get("error").and_then(Value::as_str) {
            panic!("WebDriver {method} {path}: {error}: {}", value["message"]);
        }
        value
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.command("POST", "/url", Some(json!({"url": url})))
            .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns what it returns.
    pub async fn script(&self, script: &str, args: Value) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// The first element matching `css` (fails when there is none).
    pub async fn find(&self, css: &str) -> Element {
        let v = self
            .command(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        Element(v[ELEMENT].as_str().unwrap().to_string())
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.command("POST", &format!("/element/{}/click", e.0), None)
            .await;
    }

    /// Types `text` into the first element matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.command(
            "POST",
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// The visible text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.command("GET", &format!("/element/{}/text", e.0), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until `condition` (a script body returning a truthy value or null) holds, for at most
    /// `secs`; returns its value.
    pub async fn until(&self, secs: u64, what: &str, condition: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.script(condition, json!([])).await;
            if !(v.is_null() || v == false || v == "") {
                return v;
            }
            if Instant::now() > deadline {
                let shown = self
                    .script(
                        "return document.body ? document.body.innerText.slice(0, 2000) : ''",
                        json!([]),
                    )
                    .await;
                panic!("waited {secs} s for {what}; the page shows:\n{shown}");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Resizes the window to `width`×`height`.
    pub async fn command_window(&self, width: u32, height: u32) {
        self.command(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// Saves a PNG screenshot of the window to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) {
        let b64 = self.command("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// The browser console's entries since the last call (level and message).
    pub async fn console(&self) -> Vec<(String, String)> {
        let entries = self
            .command("POST", "/se/log", Some(json!({"type": "browser"})))
            .await;
        entries
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["level"].as_str().unwrap_or_default().to_string(),
                    e["message"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}
