//! The notifier stage as operators run it, `relec notify` in a process of its own, against
//! the real broker, a real SMTP server (the bed's aiosmtpd, one private instance per test
//! so it can be stopped) and a real HTTP receiver on 127.0.0.1:0 that verifies every
//! Standard Webhooks signature: alerts in, signed webhooks and parsed UTF-8 emails out,
//! once; retries, the dead-letter topic and replay; SIGKILL mid-delivery; grouping and
//! resolved notices; TLP across every channel and format; silences and inhibition; an
//! SMTP outage of a minute.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path as UrlPath, State},
    http::{HeaderMap, StatusCode},
    routing::post,
};
use mail_parser::{MessageParser, MimeHeaders};
use relec_notifier::webhook::{
    DEFAULT_TOLERANCE, HEADER_ID, HEADER_IDEMPOTENCY_KEY, VerifyError, WebhookSecret, verify,
};
use relec_plumbing::{
    Config,
    config::TopicSpec,
    kafka::{Kafka, RecordProducer},
};
use relec_schemas::{Alert, AlertStatus, Severity, Tlp, WireFormat};
use relec_tests::{RECEIVE_DEADLINE, broker, config, group_lag, metric, relec_binary, unique};

/// Every webhook of the tests signs with this (the Standard Webhooks example secret).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The broker's smallest session timeout: a killed instance holds its partitions this long.
const SESSION_TIMEOUT: &str = "6s";
/// How long "nothing more arrives" is watched for once the stage has settled.
const QUIET: Duration = Duration::from_secs(3);
/// The acceptance's SMTP outage.
const SMTP_DOWN: Duration = Duration::from_secs(60);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

/// A firing alert of `rule` on `route`, marked so every body that carries it can be
/// recognised: its fingerprint is `fp` and its summary says `MARK-<fp>`.
fn alert(fp: &str, rule: &str, route: &str, handling: Tlp) -> Alert {
    let now = now_ms();
    Alert {
        fingerprint: fp.to_owned(),
        rule_id: rule.to_owned(),
        rule_version: "0123456789ab".to_owned(),
        status: AlertStatus::Firing,
        severity: Severity::High,
        labels: BTreeMap::from([
            ("route".to_owned(), route.to_owned()),
            ("country".to_owned(), "TUR".to_owned()),
        ]),
        annotations: BTreeMap::from([(
            "summary".to_owned(),
            format!("MARK-{fp}: {route} over its threshold"),
        )]),
        starts_at: now - 86_400_000,
        ends_at: None,
        window_start: now - 7 * 86_400_000,
        window_end: now,
        value: 412.0,
        threshold: Some(150.0),
        handling,
        countries: vec!["IRN".to_owned(), "TUR".to_owned()],
        evidence: vec![format!("ev-{fp}")],
        generated_at: now,
    }
}

fn resolved(a: &Alert) -> Alert {
    let now = now_ms();
    Alert {
        status: AlertStatus::Resolved,
        ends_at: Some(now),
        generated_at: now,
        ..a.clone()
    }
}

/// Polls `check` every 100 ms until it is true, failing with `what` after `deadline`.
async fn wait_until<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + deadline;
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < until,
            "timed out after {deadline:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A directory of its own, removed when the test passes (kept, with logs, when it fails).
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(unique("relec-notify-stage"));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

// ---------------------------------------------------------------------------------------
// A private SMTP server: the test bed's aiosmtpd, on a port and inbox of this test's own.
// ---------------------------------------------------------------------------------------

struct Smtp {
    port: u16,
    inbox: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Smtp {
    fn start(dir: &Path) -> Self {
        let mut smtp = Self {
            port: free_port(),
            inbox: dir.join("inbox"),
            log: dir.join("smtp.log"),
            child: None,
        };
        std::fs::create_dir_all(&smtp.inbox).expect("inbox");
        smtp.up();
        smtp
    }

    /// Starts the server (again, on the same port and inbox) and waits until it accepts.
    fn up(&mut self) {
        // tests/run.sh (through tests/bed/up.sh) made the venv; the shared server is
        // RELEC_TEST_SMTP, which must exist for the bed to be up at all.
        assert!(
            std::env::var("RELEC_TEST_SMTP").is_ok(),
            "RELEC_TEST_SMTP is not set: run the suite with tests/run.sh"
        );
        let bed = std::env::var("RELEC_BED_DIR").unwrap_or_else(|_| "/tmp/relec-bed".into());
        let python = Path::new(&bed).join("venv/bin/python");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bed/smtp_server.py");
        let child = Command::new(&python)
            .arg("-u")
            .arg(&script)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--inbox")
            .arg(&self.inbox)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.log)
                    .expect("smtp log"),
            )
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", python.display()));
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < until,
                "SMTP server did not start: {}",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every message received so far, in arrival order, as raw bytes.
    fn messages(&self) -> Vec<Vec<u8>> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.inbox)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        names.sort();
        names.iter().filter_map(|p| std::fs::read(p).ok()).collect()
    }

    /// The messages whose To is `address`, parsed: (subject, text, html).
    fn mail_to(&self, address: &str) -> Vec<Mail> {
        self.messages()
            .iter()
            .filter_map(|raw| Mail::parse(raw))
            .filter(|m| m.to.iter().any(|t| t == address))
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.down();
    }
}

/// An email as the recipient reads it.
#[derive(Debug, Clone)]
struct Mail {
    message_id: String,
    to: Vec<String>,
    subject: String,
    text: String,
    html: String,
    content_types: Vec<String>,
}

impl Mail {
    fn parse(raw: &[u8]) -> Option<Self> {
        let m = MessageParser::default().parse(raw)?;
        let to = m
            .to()
            .map(|a| {
                a.iter()
                    .filter_map(|a| a.address().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let content_types = m
            .parts
            .iter()
            .filter_map(|p| p.content_type())
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default()))
            .collect();
        Some(Self {
            message_id: m.message_id().unwrap_or_default().to_owned(),
            to,
            subject: m.subject().unwrap_or_default().to_owned(),
            text: m.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
            html: m.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
            content_types,
        })
    }

    fn all(&self) -> String {
        format!("{}\n{}\n{}", self.subject, self.text, self.html)
    }
}

// ---------------------------------------------------------------------------------------
// A webhook receiver: verifies each request's signature, answers from a script per hook.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Answer {
    Status(u16),
    /// Holds the request this long before answering 200 (the notifier dies meanwhile).
    Hang(Duration),
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Hit {
    hook: String,
    id: String,
    headers: HeaderMap,
    body: Bytes,
    verdict: Result<(), VerifyError>,
    answered: u16,
    at: i64,
}

impl Hit {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Clone, Default)]
struct Hooks {
    hits: Arc<Mutex<Vec<Hit>>>,
    scripts: Arc<Mutex<HashMap<String, VecDeque<Answer>>>>,
}

impl Hooks {
    async fn start() -> (SocketAddr, Self) {
        let hooks = Self::default();
        let app = Router::new()
            .route("/hook/{name}", post(receive))
            .with_state(hooks.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, hooks)
    }

    fn script(&self, hook: &str, answers: &[Answer]) {
        self.scripts
            .lock()
            .unwrap()
            .insert(hook.to_owned(), answers.iter().copied().collect());
    }

    fn hits(&self, hook: &str) -> Vec<Hit> {
        (self.hits.lock().unwrap().iter())
            .filter(|h| h.hook == hook)
            .cloned()
            .collect()
    }

    fn all(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

async fn receive(
    State(hooks): State<Hooks>,
    UrlPath(hook): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let secret = WebhookSecret::parse(SECRET).expect("valid secret");
    let verdict = verify(
        &secret,
        &headers,
        &body,
        SystemTime::now(),
        DEFAULT_TOLERANCE,
    );
    let answer = (hooks.scripts.lock().unwrap().get_mut(&hook))
        .and_then(VecDeque::pop_front)
        .unwrap_or(Answer::Status(200));
    let answered = match (&verdict, answer) {
        (Err(_), _) => 401,
        (Ok(()), Answer::Status(s)) => s,
        (Ok(()), Answer::Hang(_)) => 200,
    };
    hooks.hits.lock().unwrap().push(Hit {
        hook,
        id: (headers.get(HEADER_ID))
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        headers: headers.clone(),
        body,
        verdict,
        answered,
        at: now_ms(),
    });
    if let Answer::Hang(d) = answer {
        tokio::time::sleep(d).await;
    }
    StatusCode::from_u16(answered).expect("a status")
}

// ---------------------------------------------------------------------------------------
// One run's topics, group, SMTP server, receiver and config.
// ---------------------------------------------------------------------------------------

struct Bed {
    config: Config,
    kafka: Kafka,
    group: String,
    scratch: Scratch,
    smtp: Smtp,
    hooks: Hooks,
    hooks_addr: SocketAddr,
    alerts: RecordProducer<Alert>,
    /// Extra `[notifier]` settings (retry, breaker) for the config file.
    notifier: String,
}

impl Bed {
    async fn new(notifier: &str) -> Self {
        let mut config = config(&broker(), WireFormat::SingleObject);
        let run = unique("n");
        let t = &mut config.topics;
        t.notifications_dlq = TopicSpec::new(&format!("{run}.dlq"), 1, None);
        t.notifier_deliveries = TopicSpec::changelog(&format!("{run}.deliveries"), 3);
        t.notifier_silences = TopicSpec::changelog(&format!("{run}.silences"), 1);
        let kafka = Kafka::connect(&config).expect("connect");
        kafka.create_topics(&config.topics).await.expect("topics");
        let alerts = kafka
            .record_producer::<Alert>("test", &config.topics.alerts.name)
            .await
            .expect("producer");
        let scratch = Scratch::new();
        let smtp = Smtp::start(&scratch.0);
        let (hooks_addr, hooks) = Hooks::start().await;
        Self {
            config,
            kafka,
            group: unique("notifier"),
            scratch,
            smtp,
            hooks,
            hooks_addr,
            alerts,
            notifier: notifier.to_owned(),
        }
    }

    /// The URL of receiver hook `name`.
    fn hook(&self, name: &str) -> String {
        format!("http://{}/hook/{name}", self.hooks_addr)
    }

    /// A `[[subscribers.webhooks]]` entry for hook `name` in `format`.
    fn webhook(&self, name: &str, format: &str) -> String {
        format!(
            "[[subscribers.webhooks]]\nname = {name:?}\nurl = {:?}\nsecret = {SECRET:?}\nformat = {format:?}\ntimeout = \"30s\"\n",
            self.hook(name)
        )
    }

    fn subscriptions(&self, text: &str) -> PathBuf {
        let path = self.scratch.0.join("subscriptions.toml");
        std::fs::write(&path, text).expect("subscriptions file");
        path
    }

    /// The config file for `relec notify` (and its CLI): this run's topics, group, SMTP
    /// server and subscriptions, a telemetry port of its own.
    fn config_file(&self, port: u16) -> PathBuf {
        let t = &self.config.topics;
        let file = self.scratch.0.join(format!("relec-{port}.toml"));
        std::fs::write(
            &file,
            format!(
                "[kafka]\nbrokers = {:?}\n\
                 [kafka.consumer]\nsession_timeout = {SESSION_TIMEOUT:?}\n\
                 [topics.alerts]\nname = {:?}\n\
                 [topics.notifications_dlq]\nname = {:?}\n\
                 [topics.notifier_deliveries]\nname = {:?}\npartitions = 3\ncompacted = true\n\
                 [topics.notifier_silences]\nname = {:?}\ncompacted = true\n\
                 [notifier]\nsubscriptions = {:?}\ngroup = {:?}\nreload_interval = \"500ms\"\n{}\n\
                 [notifier.smtp]\nhost = \"127.0.0.1\"\nport = {}\nfrom = \"RELEC EWS <relec@relec.example>\"\ntimeout = \"2s\"\n\
                 [telemetry]\nlisten = \"127.0.0.1:{port}\"\n",
                self.config.kafka.brokers,
                t.alerts.name,
                t.notifications_dlq.name,
                t.notifier_deliveries.name,
                t.notifier_silences.name,
                self.scratch.0.join("subscriptions.toml").display().to_string(),
                self.group,
                self.notifier,
                self.smtp.port,
            ),
        )
        .expect("config file");
        file
    }

    /// Starts `relec notify` and waits until it is ready (consuming, silences read).
    async fn start(&self) -> Stage {
        let port = free_port();
        let file = self.config_file(port);
        let log = self
            .scratch
            .0
            .join(format!("notify-{}.log", uuid::Uuid::new_v4().simple()));
        let child = Command::new(relec_binary())
            .arg("--config")
            .arg(&file)
            .arg("notify")
            .env("RUST_LOG", "info,relec_notifier=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start relec notify");
        let mut stage = Stage {
            child,
            base: format!("http://127.0.0.1:{port}"),
            config: file,
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("http client"),
        };
        let until = Instant::now() + RECEIVE_DEADLINE;
        loop {
            stage.assert_running();
            let ready = stage
                .http
                .get(format!("{}/readyz", stage.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return stage;
            }
            assert!(
                Instant::now() < until,
                "relec notify not ready:\n{}",
                stage.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn publish(&self, alerts: &[Alert]) {
        for result in self
            .alerts
            .send_all(alerts.iter().map(|a| (a.fingerprint.as_str(), a)))
            .await
        {
            result.expect("published");
        }
    }

    /// Waits until every consumed alert's deliveries ended and their offsets are
    /// committed, then watches for [`QUIET`] that nothing more is sent.
    async fn settle(&self, stage: &mut Stage) {
        let topic = self.config.topics.alerts.name.clone();
        wait_until("the group committed every alert", RECEIVE_DEADLINE, || {
            let (kafka, group, topic) = (&self.kafka, &self.group, &topic);
            async move { group_lag(kafka, group, topic).await == 0 }
        })
        .await;
        let before = (self.hooks.all().len(), self.smtp.messages().len());
        tokio::time::sleep(QUIET).await;
        stage.assert_running();
        assert_eq!(
            (self.hooks.all().len(), self.smtp.messages().len()),
            before,
            "more was sent after the stage settled"
        );
    }

    /// Runs the relec CLI with `args` against `stage`'s config file.
    fn cli(&self, stage: &Stage, args: &[&str]) -> Output {
        Command::new(relec_binary())
            .arg("--config")
            .arg(&stage.config)
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run relec")
    }
}

/// A running `relec notify`, SIGKILLed when dropped.
struct Stage {
    child: Child,
    base: String,
    config: PathBuf,
    log: PathBuf,
    http: reqwest::Client,
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Stage {
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// SIGTERM, and the exit status of the drain that follows (bounded).
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < until,
                "no exit 30 s after SIGTERM:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!("relec notify exited ({status}):\n{}", self.log_tail());
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    async fn metrics(&self) -> String {
        let response = (self.http.get(format!("{}/metrics", self.base)).send())
            .await
            .expect("metrics");
        response.text().await.expect("metrics text")
    }

    async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric(&self.metrics().await, name, labels).unwrap_or(0.0)
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("admin request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "relec failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

// ---------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------

/// One alert in: each webhook (native, CAP, Alertmanager) gets one request whose signature
/// verifies, and each NCP one multipart email, in its language, UTF-8 subject included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_arrives_once_as_signed_webhooks_and_parsed_emails() {
    let bed = Bed::new("").await;
    bed.subscriptions(&format!(
        r#"
[[subscribers]]
id = "irn-ncp"
country = "IRN"
clearance = "AMBER"
[subscribers.email]
addresses = ["ncp@police.ir.example"]
locale = "fa"
{}
[[subscribers]]
id = "bgd-ncp"
country = "BGD"
clearance = "AMBER"
[subscribers.email]
addresses = ["ncp@police.gov.bd.example"]
locale = "bn"

[[subscribers]]
id = "tur-ncp"
country = "TUR"
clearance = "AMBER"
[subscribers.email]
addresses = ["ncp@egm.gov.tr.example"]
locale = "tr"
{}{}
[[receivers]]
name = "all"
subscribers = ["irn-ncp", "bgd-ncp", "tur-ncp"]

[route]
receiver = "all"
group_by = ["rule", "route"]
group_wait = "500ms"
"#,
        bed.webhook("native", "native"),
        bed.webhook("cap", "cap"),
        bed.webhook("am", "alertmanager"),
    ));
    let mut stage = bed.start().await;
    let spike = alert("fp-spike-1", "route_spike", "IRN-TUR-VAN", Tlp::Amber);
    bed.publish(std::slice::from_ref(&spike)).await;

    wait_until("3 webhooks and 3 emails", RECEIVE_DEADLINE, || async {
        bed.hooks.all().len() >= 3 && bed.smtp.messages().len() >= 3
    })
    .await;
    bed.settle(&mut stage).await;

    // Webhooks: one request each, signed, the idempotency key as webhook-id.
    for (hook, expected) in [
        ("native", "\"fp-spike-1\""),
        ("cap", "urn:oasis:names:tc:emergency:cap:1.2"),
        ("am", "\"4\""),
    ] {
        let hits = bed.hooks.hits(hook);
        assert_eq!(hits.len(), 1, "{hook}: {hits:?}");
        let hit = &hits[0];
        assert_eq!(hit.verdict, Ok(()), "{hook}");
        assert_eq!(hit.answered, 200);
        assert!(hit.text().contains(expected), "{hook}: {}", hit.text());
        assert!(hit.text().contains("fp-spike-1"), "{hook}");
        if hook != "cap" {
            let json: serde_json::Value = serde_json::from_slice(&hit.body).expect("JSON");
            let version = if hook == "am" { "4" } else { "1" };
            assert_eq!(json["version"], version, "{hook}");
        }
        assert_eq!(
            hit.headers[HEADER_IDEMPOTENCY_KEY].to_str().unwrap(),
            hit.id,
            "{hook}"
        );
    }
    // The receiver's check is real: a tampered body or a stale timestamp fails it.
    let hit = &bed.hooks.hits("native")[0];
    let secret = WebhookSecret::parse(SECRET).expect("secret");
    let mut tampered = hit.body.to_vec();
    tampered[10] ^= 1;
    assert_eq!(
        verify(
            &secret,
            &hit.headers,
            &tampered,
            SystemTime::now(),
            DEFAULT_TOLERANCE
        ),
        Err(VerifyError::NoMatch)
    );
    let later = SystemTime::now() + DEFAULT_TOLERANCE + Duration::from_secs(60);
    assert!(matches!(
        verify(&secret, &hit.headers, &hit.body, later, DEFAULT_TOLERANCE),
        Err(VerifyError::Stale { .. })
    ));

    // Emails: one per NCP, text and HTML, subject with severity, rule and route in the
    // NCP's language (Persian, Bengali, Turkish).
    for (to, status_word) in [
        ("ncp@police.ir.example", "فعال"),
        ("ncp@police.gov.bd.example", "সক্রিয়"),
        ("ncp@egm.gov.tr.example", "etkin"),
    ] {
        let mails = bed.smtp.mail_to(to);
        assert_eq!(mails.len(), 1, "{to}: {mails:?}");
        let m = &mails[0];
        assert!(m.subject.contains("route_spike"), "{to}: {}", m.subject);
        assert!(m.subject.contains("IRN-TUR-VAN"), "{to}: {}", m.subject);
        assert!(m.subject.contains("TLP:AMBER"), "{to}: {}", m.subject);
        assert!(m.subject.contains(status_word), "{to}: {}", m.subject);
        assert!(m.text.contains("MARK-fp-spike-1"), "{to}: {}", m.text);
        assert!(m.html.contains("MARK-fp-spike-1"), "{to}");
        assert!(
            m.content_types.iter().any(|c| c == "text/plain")
                && m.content_types.iter().any(|c| c == "text/html"),
            "{to}: {:?}",
            m.content_types
        );
    }

    for channel in ["email", "webhook"] {
        let delivered = stage
            .metric(
                "relec_notifier_notifications_total",
                &[("channel", channel), ("outcome", "delivered")],
            )
            .await;
        assert_eq!(delivered, 3.0, "{channel}");
    }
    let latencies = stage
        .metric("relec_notifier_delivery_latency_seconds_count", &[])
        .await;
    assert_eq!(latencies, 6.0);
}

/// A webhook answering 500 three times, then 200, gets it once (four identical signed
/// requests); one answering 400 sends it straight to the DLQ with the reason, and a
/// replay from the DLQ delivers it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_deliver_once_a_400_is_dead_lettered_and_replayed() {
    let bed = Bed::new(
        "[notifier.retry]\ninitial_backoff = \"100ms\"\nmax_backoff = \"500ms\"\nmax_attempts = 6\n",
    )
    .await;
    bed.subscriptions(&format!(
        r#"
[[subscribers]]
id = "ops"
country = "TUR"
clearance = "AMBER"
{}{}
[[receivers]]
name = "ops"
subscribers = ["ops"]

[route]
receiver = "ops"
group_wait = "200ms"
"#,
        bed.webhook("flaky", "native"),
        bed.webhook("strict", "native"),
    ));
    bed.hooks.script(
        "flaky",
        &[
            Answer::Status(500),
            Answer::Status(500),
            Answer::Status(500),
        ],
    );
    bed.hooks.script("strict", &[Answer::Status(400)]);
    let mut stage = bed.start().await;
    bed.publish(&[alert("fp-retry", "route_spike", "IRN-TUR-VAN", Tlp::Green)])
        .await;
    wait_until(
        "flaky delivered, strict refused",
        RECEIVE_DEADLINE,
        || async {
            bed.hooks.hits("flaky").iter().any(|h| h.answered == 200)
                && !bed.hooks.hits("strict").is_empty()
        },
    )
    .await;
    bed.settle(&mut stage).await;

    let flaky = bed.hooks.hits("flaky");
    let answers: Vec<u16> = flaky.iter().map(|h| h.answered).collect();
    assert_eq!(answers, [500, 500, 500, 200]);
    assert!(
        flaky
            .iter()
            .all(|h| h.id == flaky[0].id && h.verdict.is_ok())
    );
    assert!(
        flaky.iter().all(|h| h.body == flaky[0].body),
        "every retry sends the same body"
    );
    let strict = bed.hooks.hits("strict");
    assert_eq!(strict.len(), 1, "a 400 is not retried");

    // The DLQ: one record, keyed by delivery id, the reason in its headers and body.
    let listed = stdout(&bed.cli(&stage, &["notify", "dlq", "list"]));
    let lines: Vec<&str> = listed.lines().skip(1).collect();
    assert_eq!(lines.len(), 1, "{listed}");
    assert!(lines[0].contains("ops/webhook/strict"), "{listed}");
    assert!(lines[0].contains("HTTP 400"), "{listed}");
    assert!(lines[0].contains(" 1 "), "one attempt: {listed}");
    assert!(lines[0].contains("failed"), "{listed}");
    let records = relec_notifier::stage::topic::read_to_end(
        &bed.kafka,
        &bed.config.topics.notifications_dlq.name,
        false,
    )
    .await
    .expect("dlq");
    assert_eq!(records.len(), 1);
    let headers: HashMap<_, _> = records[0].headers.iter().cloned().collect();
    assert!(
        headers["relec.dlq.reason"].contains("HTTP 400"),
        "{headers:?}"
    );
    assert_eq!(headers["relec.dlq.attempts"], "1");
    assert_eq!(headers["relec.dlq.class"], "permanent");
    assert_eq!(
        records[0].key,
        format!("{}@ops/webhook/strict", strict[0].id)
    );

    for (name, labels, expected) in [
        (
            "relec_notifier_retries_total",
            vec![("channel", "webhook")],
            3.0,
        ),
        (
            "relec_notifier_dlq_records_total",
            vec![("channel", "webhook")],
            1.0,
        ),
        (
            "relec_notifier_notifications_total",
            vec![("channel", "webhook"), ("outcome", "permanent")],
            1.0,
        ),
        (
            "relec_notifier_notifications_total",
            vec![("channel", "webhook"), ("outcome", "delivered")],
            1.0,
        ),
    ] {
        assert_eq!(
            stage.metric(name, &labels).await,
            expected,
            "{name} {labels:?}"
        );
    }

    // Replay: the receiver takes it now; once, with the same idempotency key.
    let replayed = stdout(&bed.cli(&stage, &["notify", "dlq", "replay", "--all"]));
    assert!(replayed.contains("delivered"), "{replayed}");
    let strict = bed.hooks.hits("strict");
    assert_eq!(strict.len(), 2);
    assert_eq!((strict[1].answered, &strict[1].id), (200, &strict[0].id));
    assert_eq!(strict[1].verdict, Ok(()));
    let listed = stdout(&bed.cli(&stage, &["notify", "dlq", "list"]));
    assert!(
        listed.lines().nth(1).unwrap_or("").contains("replayed"),
        "{listed}"
    );
    // Replayed entries are not sent again.
    stdout(&bed.cli(&stage, &["notify", "dlq", "replay", "--all"]));
    let again = stdout(&bed.cli(
        &stage,
        &["notify", "dlq", "replay", "--id", &strict[0].id[..16]],
    ));
    assert!(again.contains("replayed before"), "{again}");
    assert_eq!(bed.hooks.hits("strict").len(), 2);
}

/// SIGKILL while a webhook request is in flight, then a restart: the in-flight delivery
/// is sent again with the same idempotency key, what was delivered before is not, and
/// an alert published while the notifier was down arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_delivery_repeats_only_the_in_flight_delivery() {
    let bed = Bed::new("").await;
    bed.subscriptions(&format!(
        r#"
[[subscribers]]
id = "hq"
country = "TUR"
clearance = "AMBER"
{}{}
[[receivers]]
name = "fast"
channels = ["hq/webhook/fast"]

[[receivers]]
name = "slow"
channels = ["hq/webhook/slow"]

[route]
receiver = "fast"
group_by = ["rule", "route"]
group_wait = "200ms"

[[route.routes]]
receiver = "slow"
matchers = ['route="SLOW"']
"#,
        bed.webhook("fast", "native"),
        bed.webhook("slow", "native"),
    ));
    bed.hooks
        .script("slow", &[Answer::Hang(Duration::from_secs(120))]);
    let first = bed.start().await;
    bed.publish(&[alert("fp-before", "route_spike", "FAST-1", Tlp::Green)])
        .await;
    wait_until("the first alert delivered", RECEIVE_DEADLINE, || async {
        bed.hooks.hits("fast").len() == 1
    })
    .await;
    bed.publish(&[alert("fp-slow", "route_spike", "SLOW", Tlp::Green)])
        .await;
    wait_until("the slow request in flight", RECEIVE_DEADLINE, || async {
        bed.hooks.hits("slow").len() == 1
    })
    .await;
    // The hanging endpoint delays nobody else.
    let published = now_ms();
    bed.publish(&[alert("fp-during", "route_spike", "FAST-3", Tlp::Green)])
        .await;
    wait_until(
        "a fast delivery beside the hanging one",
        RECEIVE_DEADLINE,
        || async { bed.hooks.hits("fast").len() == 2 },
    )
    .await;
    assert!(now_ms() - published < 5_000, "the fast endpoint waited");
    assert_eq!(bed.hooks.hits("slow").len(), 1, "still hanging");
    // Killed once the fast delivery's end is recorded: the slow one alone is in flight.
    wait_until(
        "only the slow delivery in flight",
        RECEIVE_DEADLINE,
        || async {
            let labels = [("channel", "webhook")];
            first
                .metric("relec_notifier_deliveries_in_flight", &labels)
                .await
                == 1.0
        },
    )
    .await;
    first.kill();

    bed.publish(&[alert("fp-while-down", "route_spike", "FAST-2", Tlp::Green)])
        .await;
    let mut second = bed.start().await;
    wait_until(
        "the slow one again and the new one",
        RECEIVE_DEADLINE,
        || async { bed.hooks.hits("slow").len() >= 2 && bed.hooks.hits("fast").len() >= 2 },
    )
    .await;
    bed.settle(&mut second).await;

    let slow = bed.hooks.hits("slow");
    assert_eq!(slow.len(), 2, "only the in-flight delivery repeats");
    assert_eq!(slow[0].id, slow[1].id, "with the same idempotency key");
    assert_eq!(slow[0].body, slow[1].body);
    let fast = bed.hooks.hits("fast");
    assert_eq!(fast.len(), 3, "{fast:?}");
    assert!(fast[0].text().contains("fp-before"));
    assert!(fast[1].text().contains("fp-during"));
    assert!(fast[2].text().contains("fp-while-down"), "nothing lost");
    assert!(bed.hooks.all().iter().all(|h| h.verdict.is_ok()));
}

/// 50 alerts of one group within group_wait give one email; when they resolve, the route
/// with send_resolved sends one resolved notice and the one without sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_alerts_make_one_email_and_resolving_gives_one_notice() {
    let bed = Bed::new("").await;
    bed.subscriptions(
        r#"
[[subscribers]]
id = "desk"
country = "TUR"
clearance = "AMBER"
[subscribers.email]
addresses = ["desk@relec.example"]

[[subscribers]]
id = "quiet"
country = "IRN"
clearance = "AMBER"
[subscribers.email]
addresses = ["quiet@relec.example"]

[[receivers]]
name = "desk"
subscribers = ["desk"]

[[receivers]]
name = "quiet"
subscribers = ["quiet"]

[route]
receiver = "desk"
group_by = ["rule"]
group_wait = "3s"
group_interval = "1s"

[[route.routes]]
receiver = "quiet"
matchers = ['rule="route_spike"']
send_resolved = false
continue = true

[[route.routes]]
receiver = "desk"
matchers = ['rule="route_spike"']
send_resolved = true
"#,
    );
    let mut stage = bed.start().await;
    let alerts: Vec<Alert> = (0..50)
        .map(|i| {
            alert(
                &format!("fp-{i:02}"),
                "route_spike",
                &format!("ROUTE-{i:02}"),
                Tlp::Green,
            )
        })
        .collect();
    bed.publish(&alerts).await;
    wait_until("one email each", RECEIVE_DEADLINE, || async {
        bed.smtp.messages().len() >= 2
    })
    .await;
    bed.settle(&mut stage).await;
    for to in ["desk@relec.example", "quiet@relec.example"] {
        let mails = bed.smtp.mail_to(to);
        assert_eq!(mails.len(), 1, "{to}: one email for the 50 alerts");
        assert!(
            mails[0].subject.contains("(50 alerts)"),
            "{}",
            mails[0].subject
        );
        assert!(mails[0].subject.contains("firing"), "{}", mails[0].subject);
        for a in &alerts {
            assert!(
                mails[0].text.contains(&format!("MARK-{}", a.fingerprint)),
                "{to}"
            );
        }
    }

    let resolutions: Vec<Alert> = alerts.iter().map(resolved).collect();
    bed.publish(&resolutions).await;
    wait_until("the resolved notice", RECEIVE_DEADLINE, || async {
        bed.smtp.mail_to("desk@relec.example").len() >= 2
    })
    .await;
    bed.settle(&mut stage).await;
    let desk = bed.smtp.mail_to("desk@relec.example");
    assert_eq!(desk.len(), 2);
    assert!(desk[1].subject.contains("resolved"), "{}", desk[1].subject);
    assert!(
        desk[1].subject.contains("(50 alerts)"),
        "{}",
        desk[1].subject
    );
    assert_eq!(
        bed.smtp.mail_to("quiet@relec.example").len(),
        1,
        "no resolved notice without send_resolved"
    );
    // SIGTERM drains and exits cleanly.
    let status = stage.terminate();
    assert!(status.success(), "{status}");
}

/// AMBER never reaches a subscriber cleared only for GREEN, RED reaches only the named
/// recipient: in email and in each webhook format, bodies included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tlp_bounds_every_channel_and_format() {
    let bed = Bed::new("").await;
    let hooks = |prefix: &str| {
        ["native", "cap", "alertmanager"]
            .iter()
            .map(|f| bed.webhook(&format!("{prefix}-{f}"), f))
            .collect::<String>()
    };
    bed.subscriptions(&format!(
        r#"
[[subscribers]]
id = "cleared"
country = "TUR"
clearance = "AMBER_STRICT"
[subscribers.email]
addresses = ["cleared@relec.example"]
{}
[[subscribers]]
id = "green"
country = "IRN"
clearance = "GREEN"
[subscribers.email]
addresses = ["green@relec.example"]
{}
[[subscribers]]
id = "named"
country = "IRQ"
clearance = "AMBER"
[subscribers.email]
addresses = ["named@relec.example"]
{}
[[receivers]]
name = "all"
subscribers = ["cleared", "green", "named"]
red_recipients = ["named"]

[[receivers]]
name = "greens"
subscribers = ["green"]

[route]
receiver = "all"
group_by = ["rule", "route"]
group_wait = "1s"

[[route.routes]]
receiver = "greens"
matchers = ['route="ELSEWHERE"']
"#,
        hooks("cleared"),
        hooks("green"),
        hooks("named"),
    ));
    let mut stage = bed.start().await;
    let markers = [
        ("fp-green", Tlp::Green),
        ("fp-amber", Tlp::Amber),
        ("fp-red", Tlp::Red),
    ];
    let mut alerts: Vec<Alert> = markers
        .iter()
        .map(|(fp, tlp)| alert(fp, "route_spike", "IRN-TUR-VAN", *tlp))
        .collect();
    // RED where nobody is named: nobody may receive it.
    alerts.push(alert(
        "fp-red-nowhere",
        "route_spike",
        "ELSEWHERE",
        Tlp::Red,
    ));
    bed.publish(&alerts).await;
    wait_until("every channel served", RECEIVE_DEADLINE, || async {
        bed.hooks.all().len() >= 9 && bed.smtp.messages().len() >= 3
    })
    .await;
    bed.settle(&mut stage).await;

    // (recipient, may see) — the RED alert nobody is named for reaches nobody.
    let expected = [
        ("cleared", ["fp-green", "fp-amber"].as_slice()),
        ("green", ["fp-green"].as_slice()),
        ("named", ["fp-green", "fp-amber", "fp-red"].as_slice()),
    ];
    for (who, visible) in expected {
        let mails = bed.smtp.mail_to(&format!("{who}@relec.example"));
        assert_eq!(mails.len(), 1, "{who}");
        let mut bodies = vec![(format!("{who}/email"), mails[0].all())];
        for format in ["native", "cap", "alertmanager"] {
            let hits = bed.hooks.hits(&format!("{who}-{format}"));
            assert_eq!(hits.len(), 1, "{who} {format}");
            bodies.push((format!("{who}/{format}"), hits[0].text()));
        }
        for (channel, body) in bodies {
            for fp in ["fp-green", "fp-amber", "fp-red", "fp-red-nowhere"] {
                let marker = format!("MARK-{fp}:");
                assert_eq!(
                    body.contains(&marker),
                    visible.contains(&fp),
                    "{channel}: {fp} {}",
                    if visible.contains(&fp) {
                        "missing"
                    } else {
                        "leaked"
                    }
                );
            }
        }
    }
    assert_eq!(
        stage
            .metric(
                "relec_notifier_alerts_unreachable_total",
                &[("handling", "RED")]
            )
            .await,
        1.0
    );
}

/// A silence (admin endpoint) mutes its alerts until it ends, then they are sent; one set
/// with the CLI is listed and expired; an inhibition rule mutes its targets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_mute_until_they_end_and_inhibition_mutes_targets() {
    let bed = Bed::new("").await;
    bed.subscriptions(&format!(
        r#"
[[subscribers]]
id = "ops"
country = "TUR"
clearance = "AMBER"
{}
[[receivers]]
name = "ops"
subscribers = ["ops"]

[route]
receiver = "ops"
group_by = ["rule", "route"]
group_wait = "300ms"
group_interval = "1s"

[[inhibit_rules]]
source_matchers = ['rule="route_spike"']
target_matchers = ['rule="route_shift"']
equal = ["route"]
"#,
        bed.webhook("ops", "native"),
    ));
    let mut stage = bed.start().await;

    // A silence of 6 s from the admin endpoint.
    let (status, created) = stage
        .request(
            reqwest::Method::POST,
            "/admin/silences",
            Some(serde_json::json!({
                "matchers": ["route=\"SILENCED\""], "duration": "6s",
                "created_by": "ops@relec", "comment": "feed maintenance",
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let ends_at = created["ends_at"].as_i64().expect("ends_at");
    let (status, listed) = stage
        .request(reqwest::Method::GET, "/admin/silences", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed["silences"][0]["state"], "active", "{listed}");

    // A silence from the CLI, for an hour.
    let id = stdout(&bed.cli(
        &stage,
        &[
            "notify",
            "silence",
            "add",
            "--matcher",
            "route=\"CLI\"",
            "--for",
            "1h",
            "--comment",
            "known duplicate feed",
            "--by",
            "analyst",
        ],
    ))
    .trim()
    .to_owned();
    let list = stdout(&bed.cli(&stage, &["notify", "silence", "list"]));
    assert!(
        list.contains(&id) && list.contains("known duplicate feed"),
        "{list}"
    );
    wait_until(
        "the stage sees the CLI's silence",
        RECEIVE_DEADLINE,
        || async {
            let (_, listed) = stage
                .request(reqwest::Method::GET, "/admin/silences", None)
                .await;
            listed.to_string().contains(&id)
        },
    )
    .await;

    bed.publish(&[
        alert("fp-silenced", "route_spike", "SILENCED", Tlp::Green),
        alert("fp-cli", "route_spike", "CLI", Tlp::Green),
        alert("fp-spike", "route_spike", "INH", Tlp::Green),
        alert("fp-shift-inhibited", "route_shift", "INH", Tlp::Green),
        alert("fp-shift-free", "route_shift", "FREE", Tlp::Green),
    ])
    .await;
    let seen = |fp: &str| {
        let marker = format!("MARK-{fp}:");
        bed.hooks
            .all()
            .into_iter()
            .find(|h| h.text().contains(&marker))
    };
    wait_until("the unmuted alerts", RECEIVE_DEADLINE, || async {
        seen("fp-spike").is_some() && seen("fp-shift-free").is_some()
    })
    .await;
    assert!(
        seen("fp-shift-inhibited").is_none(),
        "inhibited by the spike on its route"
    );

    // The admin silence ends on time: its alert arrives after it ends, not before.
    wait_until(
        "the silenced alert after its silence",
        RECEIVE_DEADLINE,
        || async { seen("fp-silenced").is_some() },
    )
    .await;
    let arrived = seen("fp-silenced").expect("arrived").at;
    assert!(
        arrived >= ends_at,
        "sent {} ms before the silence ended",
        ends_at - arrived
    );
    assert!(
        arrived < ends_at + 5_000,
        "sent {} ms after the silence ended",
        arrived - ends_at
    );

    // The CLI's silence holds until expired (here through the admin endpoint).
    assert!(seen("fp-cli").is_none());
    let (status, expired) = stage
        .request(
            reqwest::Method::DELETE,
            &format!("/admin/silences/{id}"),
            None,
        )
        .await;
    assert_eq!(
        (status, expired["state"].as_str()),
        (200, Some("expired")),
        "{expired}"
    );
    wait_until(
        "the CLI-silenced alert after expiry",
        RECEIVE_DEADLINE,
        || async { seen("fp-cli").is_some() },
    )
    .await;
    let all = stdout(&bed.cli(&stage, &["notify", "silence", "list", "--all"]));
    let line = all.lines().find(|l| l.contains(&id)).expect("listed");
    assert!(line.contains("expired"), "{all}");
    let (status, _) = stage
        .request(
            reqwest::Method::DELETE,
            "/admin/silences/00000000-0000-0000-0000-000000000000",
            None,
        )
        .await;
    assert_eq!(status, 404);

    bed.settle(&mut stage).await;
    assert!(seen("fp-shift-inhibited").is_none());
}

/// The SMTP server is down for a minute, then up: every email arrives, none twice, none
/// dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_for_a_minute_then_up_every_email_once() {
    let mut bed = Bed::new(
        "breaker_failures = 3\nbreaker_open_for = \"2s\"\n\
         [notifier.retry]\ninitial_backoff = \"500ms\"\nmax_backoff = \"3s\"\nmax_attempts = 200\n",
    )
    .await;
    bed.subscriptions(
        r#"
[[subscribers]]
id = "desk"
country = "TUR"
clearance = "AMBER"
[subscribers.email]
addresses = ["desk@relec.example"]

[[receivers]]
name = "desk"
subscribers = ["desk"]

[route]
receiver = "desk"
group_by = ["rule", "route"]
group_wait = "300ms"
"#,
    );
    bed.smtp.down();
    let mut stage = bed.start().await;
    let alerts: Vec<Alert> = (0..5)
        .map(|i| {
            alert(
                &format!("fp-mail-{i}"),
                "route_spike",
                &format!("MAIL-{i}"),
                Tlp::Green,
            )
        })
        .collect();
    bed.publish(&alerts).await;
    tokio::time::sleep(SMTP_DOWN).await;
    stage.assert_running();
    assert!(
        stage
            .metric("relec_notifier_retries_total", &[("channel", "email")])
            .await
            >= 5.0
    );
    assert!(
        stage
            .metric(
                "relec_notifier_breaker_opens_total",
                &[("channel", "email")]
            )
            .await
            >= 1.0
    );
    bed.smtp.up();
    wait_until("every email", RECEIVE_DEADLINE, || async {
        bed.smtp.messages().len() >= alerts.len()
    })
    .await;
    bed.settle(&mut stage).await;
    let mails = bed.smtp.mail_to("desk@relec.example");
    assert_eq!(mails.len(), alerts.len(), "none twice");
    let mut ids: Vec<&str> = mails.iter().map(|m| m.message_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), alerts.len());
    for a in &alerts {
        assert_eq!(
            mails
                .iter()
                .filter(|m| m.text.contains(&format!("MARK-{}:", a.fingerprint)))
                .count(),
            1,
            "{}",
            a.fingerprint
        );
    }
    assert_eq!(
        stage
            .metric("relec_notifier_dlq_records_total", &[("channel", "email")])
            .await,
        0.0
    );
}
