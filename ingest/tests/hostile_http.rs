//! Hostile clients against the real ingest HTTP server on a loopback port: oversized
//! bodies, slow-loris clients trickling headers or a body, and malformed requests are
//! answered or cut off, while a well-behaved agency keeps publishing successfully.
//! Kafka is the embedded cluster: these tests are about the HTTP server, not the broker.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use relec_ingest::{auth::generate_key, publisher::system_clock};
use relec_plumbing::{Config, config::AgencyConfig, kafka::Kafka, telemetry::Telemetry};
use relec_schemas::sample;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    task::JoinHandle,
};
use tokio_util::sync::{CancellationToken, DropGuard};

const MAX_BODY: usize = 64 * 1024;
const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
const BODY_TIMEOUT: Duration = Duration::from_secs(2);
/// Generous bound on any wait for the server; far above the timeouts under test, so a
/// loaded machine does not fail the test, while a server that never answers does.
const PATIENCE: Duration = Duration::from_secs(60);

struct Server {
    addr: SocketAddr,
    key: String,
    _kafka: Kafka,
    _stop: DropGuard,
}

async fn start() -> Server {
    let (key, hash) = generate_key();
    let mut config = Config::default();
    config.ingest.max_body_bytes = MAX_BODY;
    config.ingest.header_read_timeout = HEADER_TIMEOUT;
    config.ingest.body_read_timeout = BODY_TIMEOUT;
    config.ingest.agencies = vec![AgencyConfig {
        id: "IRN-BORDER-GUARD".into(),
        countries: vec!["IRN".into()],
        key_sha256: hash,
    }];
    let kafka = Kafka::connect(&config).expect("embedded cluster");
    let api = relec_ingest::build(&config, &kafka, &Telemetry::new(), system_clock())
        .await
        .expect("build");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    tokio::spawn(relec_ingest::serve(listener, api, stop.clone()));
    Server {
        addr,
        key,
        _kafka: kafka,
        _stop: stop.drop_guard(),
    }
}

/// A well-behaved agency posting valid events one after the other, a fresh connection
/// each, until stopped (or 5,000 requests, or two minutes). Every answer must be 200.
struct GoodClient {
    ok: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<Vec<String>>,
}

impl GoodClient {
    fn start(server: &Server) -> Self {
        let ok = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let url = format!("http://{}/v1/events", server.addr);
        let key = server.key.clone();
        let (ok2, stop2) = (ok.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .timeout(PATIENCE)
                .build()
                .expect("client");
            let started = tokio::time::Instant::now();
            let mut failures = Vec::new();
            for i in 0..5_000u64 {
                if stop2.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(120) {
                    break;
                }
                let mut event = sample::incident(0x600D, i);
                event.reporting_country = "IRN".into();
                event.reporting_agency = "IRN-BORDER-GUARD".into();
                match http.post(&url).bearer_auth(&key).json(&event).send().await {
                    Ok(r) if r.status() == 200 => {
                        ok2.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => failures.push(format!(
                        "{}: {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    )),
                    Err(e) => failures.push(e.to_string()),
                }
            }
            failures
        });
        Self { ok, stop, task }
    }

    fn successes(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }

    /// Waits until the client has published `more` events beyond `since`.
    async fn published_since(&self, since: usize, more: usize) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.successes() < since + more {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the good client published {} events in {PATIENCE:?}",
                self.successes() - since
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Asserts the client publishes a few more events, then stops it.
    async fn still_publishes(self) {
        self.published_since(self.successes(), 3).await;
        self.stop.store(true, Ordering::Relaxed);
        let failures = self.task.await.expect("good client");
        assert!(failures.is_empty(), "the good client failed: {failures:#?}");
    }
}

/// An HTTP response as read off the socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn problem(&self) -> Value {
        assert!(
            self.head
                .to_ascii_lowercase()
                .contains("content-type: application/problem+json"),
            "{self:?}"
        );
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

/// Reads one response until the server closes the connection or the announced body is
/// complete, within [`PATIENCE`].
async fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut raw = Vec::new();
    let read = async {
        let mut buf = [0u8; 8192];
        loop {
            let n = match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            raw.extend_from_slice(&buf[..n]);
            if let Some(end) = find(&raw, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if length.is_some_and(|l| raw.len() >= end + 4 + l) {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("an answer within the patience bound");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Sends raw bytes as one request and reads the answer.
async fn exchange(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    read_answer(&mut stream).await
}

fn post_head(server: &Server, content_type: &str, extra: &str) -> String {
    format!(
        "POST /v1/events HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: {content_type}\r\nConnection: close\r\n{extra}\r\n",
        server.addr, server.key
    )
}

/// Whether the server has closed `stream`: it reads end-of-file (or a reset) within the
/// patience bound. Anything it sends first is returned.
async fn closed_by_server(stream: &mut TcpStream) -> (bool, Vec<u8>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    let closed = tokio::time::timeout(PATIENCE, read).await.is_ok();
    (closed, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413_before_they_are_read() {
    let server = start().await;
    let good = GoodClient::start(&server);
    good.published_since(0, 1).await;

    // A declared length over the limit is refused on its headers: not one body byte sent.
    let head = post_head(&server, "application/json", "Content-Length: 104857600\r\n");
    let answer = exchange(server.addr, head.as_bytes()).await;
    assert_eq!(answer.status, 413, "{answer:?}");
    let problem = answer.problem();
    assert_eq!(problem["title"], "Request body too large");
    let detail = problem["detail"].as_str().expect("detail");
    assert!(
        detail.contains(&format!("limited to {MAX_BODY} bytes")),
        "{detail}"
    );

    // An ordinary client that sends the whole oversized body anyway reads the 413 too.
    let response = reqwest::Client::new()
        .post(format!("http://{}/v1/events", server.addr))
        .bearer_auth(&server.key)
        .header("content-type", "application/json")
        .body(vec![b' '; 16 * MAX_BODY])
        .send()
        .await
        .expect("an answer, not a reset");
    assert_eq!(response.status(), 413);
    let problem: Value = response.json().await.expect("problem");
    assert_eq!(problem["title"], "Request body too large");

    // Without a length (chunked), the answer comes once the bytes pass the limit, while
    // the client is still sending: it offers 16 times the limit and is stopped early.
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let head = post_head(
        &server,
        "application/json",
        "Transfer-Encoding: chunked\r\n",
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let (mut reader, mut writer) = stream.into_split();
    let sender = tokio::spawn(async move {
        let chunk = format!("{:x}\r\n{}\r\n", 4096, " ".repeat(4096));
        let mut sent = 0;
        for _ in 0..16 * MAX_BODY / 4096 {
            if writer.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
            sent += 4096;
        }
        let _ = writer.write_all(b"0\r\n\r\n").await;
        sent
    });
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, reader.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        text.contains(&format!("limited to {MAX_BODY} bytes")),
        "{text}"
    );
    sender.await.expect("sender");

    good.still_publishes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_clients_are_cut_off_and_others_publish_meanwhile() {
    let server = start().await;
    let good = GoodClient::start(&server);
    good.published_since(0, 1).await;

    // Twenty clients trickle their headers, a byte every 100 ms: complete after ~20 s
    // (200 bytes), far beyond the 1 s header timeout. Another connects and says nothing.
    let head = post_head(&server, "application/json", "Content-Length: 2\r\n");
    assert!(head.len() > 150);
    let mut lorises = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        let head = head.clone().into_bytes();
        lorises.push(tokio::spawn(async move {
            let mut sent = 0;
            for byte in &head {
                if stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
                sent += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                // A closed connection shows on read; poll it without blocking.
                let mut probe = [0u8; 1];
                if let Ok(Ok(0)) =
                    tokio::time::timeout(Duration::from_millis(1), stream.read(&mut probe)).await
                {
                    break;
                }
            }
            (sent, head.len())
        }));
    }
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");

    // While they hold their connections, the good client goes on publishing.
    let before = good.successes();
    good.published_since(before, 5).await;

    for loris in lorises {
        let (sent, total) = loris.await.expect("loris");
        assert!(
            sent < total,
            "a slow-loris client sent all {total} header bytes"
        );
    }
    let (closed, said) = closed_by_server(&mut silent).await;
    assert!(closed, "a silent connection stays open");
    // hyper answers a header timeout by closing, with at most a 408.
    let said = String::from_utf8_lossy(&said);
    assert!(
        said.is_empty() || said.starts_with("HTTP/1.1 408"),
        "{said}"
    );

    // A body trickled a byte every 300 ms gets 408 once the 2 s body timeout is up, and
    // its connection is closed.
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let head = post_head(&server, "application/json", "Content-Length: 1000\r\n");
    stream.write_all(head.as_bytes()).await.expect("write");
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        let mut sent = 0;
        for _ in 0..200 {
            if writer.write_all(b" ").await.is_err() {
                break;
            }
            sent += 1;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        sent
    });
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, reader.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains("body-timeout") && text.contains("within 2000 ms"),
        "{text}"
    );
    trickle.abort();

    good.still_publishes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_4xx_naming_the_problem() {
    let server = start().await;
    let good = GoodClient::start(&server);
    good.published_since(0, 1).await;
    let addr = server.addr;

    // Not HTTP at all, and a broken header: hyper answers 400 and closes.
    assert_eq!(exchange(addr, b"HELLO\r\n\r\n").await.status, 400);
    assert_eq!(
        exchange(addr, b"POST /v1/events HTTP/1.1\r\nHost x\r\n\r\n")
            .await
            .status,
        400
    );
    // A length that is not a number.
    let head = post_head(&server, "application/json", "Content-Length: lots\r\n");
    assert_eq!(exchange(addr, head.as_bytes()).await.status, 400);
    // More header fields than hyper takes (100): 431.
    let many: String = (0..200).map(|i| format!("X-Pad-{i}: 1\r\n")).collect();
    let head = post_head(&server, "application/json", &many);
    assert_eq!(exchange(addr, head.as_bytes()).await.status, 431);

    // Broken chunked framing: 400 saying the body could not be read.
    let mut request = post_head(
        &server,
        "application/json",
        "Transfer-Encoding: chunked\r\n",
    );
    request.push_str("zz\r\n{}\r\n0\r\n\r\n");
    let answer = exchange(addr, request.as_bytes()).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    let detail = answer.problem()["detail"]
        .as_str()
        .expect("detail")
        .to_owned();
    assert!(detail.starts_with("the body could not be read"), "{detail}");

    // Not JSON: 400 with the parser's position.
    let body = "{\"event_id\": ";
    let mut request = post_head(
        &server,
        "application/json",
        &format!("Content-Length: {}\r\n", body.len()),
    );
    request.push_str(body);
    let answer = exchange(addr, request.as_bytes()).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    let detail = answer.problem()["detail"]
        .as_str()
        .expect("detail")
        .to_owned();
    assert!(detail.contains("line 1 column"), "{detail}");

    // The wrong content type: 415 naming it and the accepted ones.
    let mut request = post_head(&server, "text/csv", "Content-Length: 2\r\n");
    request.push_str("{}");
    let answer = exchange(addr, request.as_bytes()).await;
    assert_eq!(answer.status, 415, "{answer:?}");
    let detail = answer.problem()["detail"]
        .as_str()
        .expect("detail")
        .to_owned();
    assert!(
        detail.contains("text/csv") && detail.contains("application/json"),
        "{detail}"
    );

    // JSON of the wrong shape: 422 naming the field.
    let mut event = serde_json::to_value(sample::incident(0xBAD, 1)).expect("json");
    event["reporting_country"] = "IRN".into();
    event["persons"] = "many".into();
    let body = event.to_string();
    let mut request = post_head(
        &server,
        "application/json",
        &format!("Content-Length: {}\r\n", body.len()),
    );
    request.push_str(&body);
    let answer = exchange(addr, request.as_bytes()).await;
    assert_eq!(answer.status, 422, "{answer:?}");
    let problem = answer.problem();
    assert_eq!(problem["errors"][0]["pointer"], "/persons", "{problem}");
    assert!(
        problem["errors"][0]["detail"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );

    good.still_publishes().await;
}
