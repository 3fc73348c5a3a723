//! Hot reload of the rules directory, seen from the stage (the watch channel) and the admin
//! endpoint (the outcome): edits, additions and deletions take effect, a broken edit is
//! refused while the old version keeps running, and nothing changed publishes nothing.

mod common;

use std::{fs, path::Path, sync::Arc, time::Duration};

use prometheus::Registry;
use relec_rules::{
    reload::{ReloadHandle, ReloadMetrics, Reloader, RuleSet, Settings, Status},
    sandbox::{Limits, engine},
};
use tempfile::TempDir;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Every wait in these tests ends well before this.
const WAIT: Duration = Duration::from_secs(5);

/// Manual reloads only: no poll within a test's lifetime, no SIGHUP.
fn manual() -> Settings {
    Settings {
        poll_interval: Duration::from_secs(3600),
        sighup: false,
    }
}

fn polling() -> Settings {
    Settings {
        poll_interval: Duration::from_millis(20),
        sighup: false,
    }
}

struct Running {
    dir: TempDir,
    rules: watch::Receiver<RuleSet>,
    handle: ReloadHandle,
    // Cancelled on drop, so a failed test leaves no reloader behind.
    _shutdown: tokio_util::sync::DropGuard,
}

impl Running {
    fn path(&self, file: &str) -> std::path::PathBuf {
        self.dir.path().join(file)
    }

    fn version(&self, id: &str) -> Option<String> {
        version(&self.rules.borrow(), id)
    }

    /// The next rule set published.
    async fn next(&mut self) -> RuleSet {
        tokio::time::timeout(WAIT, self.rules.changed())
            .await
            .expect("a new rule set within the wait")
            .expect("the reloader is running");
        self.rules.borrow_and_update().clone()
    }

    async fn reload(&self) -> relec_rules::reload::Outcome {
        tokio::time::timeout(WAIT, self.handle.reload())
            .await
            .expect("an answer within the wait")
            .expect("the reloader is running")
    }
}

/// The rules of the pack: its `.rhai` files.
fn pack_size() -> usize {
    fs::read_dir(common::pack_dir())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "rhai")
        })
        .count()
}

fn pack_copy() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(common::pack_dir()).unwrap() {
        let path = entry.unwrap().path();
        // The pack's rule files, not its fixtures directory.
        if path.is_file() {
            fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    dir
}

fn start_in(dir: TempDir, settings: Settings, metrics: ReloadMetrics) -> Running {
    let engine = Arc::new(engine(&Limits::default()));
    let (reloader, outcome) = Reloader::new(engine, dir.path().to_owned(), settings, metrics);
    assert!(outcome.refused.is_empty(), "{outcome:?}");
    let mut rules = reloader.subscribe();
    rules.mark_unchanged();
    let handle = reloader.handle();
    let shutdown = CancellationToken::new();
    tokio::spawn(reloader.run(shutdown.clone()));
    Running {
        dir,
        rules,
        handle,
        _shutdown: shutdown.drop_guard(),
    }
}

fn start(settings: Settings) -> Running {
    start_in(pack_copy(), settings, ReloadMetrics::unregistered())
}

fn version(set: &RuleSet, id: &str) -> Option<String> {
    set.rules
        .iter()
        .find(|r| r.id == id)
        .map(|r| r.version.clone())
}

/// Writes through a temporary file and a rename, as editors and config tools do.
fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, path).unwrap();
}

fn edited(path: &Path) -> String {
    fs::read_to_string(path).unwrap() + "\n// tightened after review\n"
}

#[tokio::test]
async fn polling_picks_up_an_edit() {
    let mut r = start(polling());
    let before = r.version("route_spike").unwrap();
    let generation = r.rules.borrow().generation;

    write_atomically(
        &r.path("route_spike.rhai"),
        &edited(&r.path("route_spike.rhai")),
    );
    let set = r.next().await;

    assert_eq!(set.generation, generation + 1);
    assert_ne!(version(&set, "route_spike").unwrap(), before);
    assert_eq!(set.rules.len(), pack_size());
}

#[tokio::test]
async fn polling_follows_a_configmap_symlink_swap() {
    // Kubernetes mounts `name -> ..data/name` and `..data -> ..<timestamp>/`, and
    // updates by pointing `..data` at a new directory in one rename.
    let dir = tempfile::tempdir().unwrap();
    let source = common::pack_dir().join("route_spike.rhai");
    for version in ["..v1", "..v2"] {
        fs::create_dir(dir.path().join(version)).unwrap();
    }
    fs::copy(&source, dir.path().join("..v1/route_spike.rhai")).unwrap();
    fs::write(dir.path().join("..v2/route_spike.rhai"), edited(&source)).unwrap();
    std::os::unix::fs::symlink("..v1", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink(
        "..data/route_spike.rhai",
        dir.path().join("route_spike.rhai"),
    )
    .unwrap();
    let mut r = start_in(dir, polling(), ReloadMetrics::unregistered());
    let before = r.version("route_spike").unwrap();

    std::os::unix::fs::symlink("..v2", r.path("..data_tmp")).unwrap();
    fs::rename(r.path("..data_tmp"), r.path("..data")).unwrap();
    let set = r.next().await;

    assert_eq!(set.rules.len(), 1);
    assert_ne!(version(&set, "route_spike").unwrap(), before);
}

#[tokio::test]
async fn a_manual_reload_reports_and_publishes_an_edit() {
    let mut r = start(manual());
    let before = r.version("death_or_missing").unwrap();

    fs::write(
        r.path("death_or_missing.rhai"),
        edited(&r.path("death_or_missing.rhai")),
    )
    .unwrap();
    let outcome = r.reload().await;
    let set = r.next().await;

    let after = version(&set, "death_or_missing").unwrap();
    assert_ne!(after, before);
    assert_eq!(outcome.status, Status::Ok);
    assert_eq!(outcome.generation, set.generation);
    assert_eq!(outcome.replaced.len(), 1, "{outcome:?}");
    assert_eq!(outcome.replaced[0].id, "death_or_missing");
    assert_eq!(outcome.replaced[0].previous, before);
    assert_eq!(outcome.replaced[0].version, after);
    assert!(outcome.added.is_empty() && outcome.removed.is_empty());
    // What the admin endpoint answers with.
    let json = serde_json::to_value(&outcome).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["replaced"][0]["id"], "death_or_missing");
}

#[tokio::test]
async fn a_broken_edit_is_refused_and_the_old_version_keeps_running() {
    let mut r = start(manual());
    let before = r.version("route_shift").unwrap();
    let good = fs::read_to_string(r.path("route_shift.rhai")).unwrap();

    fs::write(
        r.path("route_shift.rhai"),
        good.replacen("fn condition(g) {", "fn condition(g) { let = ;", 1),
    )
    .unwrap();
    let outcome = r.reload().await;

    assert_eq!(outcome.status, Status::Refused);
    assert_eq!(outcome.refused.len(), 1, "{outcome:?}");
    let refused = &outcome.refused[0];
    assert!(refused.path.ends_with("route_shift.rhai"), "{refused:?}");
    assert!(refused.error.contains("route_shift.rhai:"), "{refused:?}");
    assert_eq!(refused.kept.as_deref(), Some(before.as_str()));
    assert!(!r.rules.has_changed().unwrap(), "nothing is published");
    assert_eq!(r.version("route_shift").unwrap(), before);
    assert_eq!(r.rules.borrow().rules.len(), pack_size());

    // Fixed, it loads.
    fs::write(r.path("route_shift.rhai"), good + "\n").unwrap();
    let outcome = r.reload().await;
    assert_eq!(outcome.status, Status::Ok, "{outcome:?}");
    assert_ne!(version(&r.next().await, "route_shift").unwrap(), before);
}

#[tokio::test]
async fn deleting_a_file_removes_its_rule_and_adding_one_adds_it() {
    let mut r = start(manual());

    fs::remove_file(r.path("reporting_silence.rhai")).unwrap();
    let outcome = r.reload().await;
    let set = r.next().await;
    assert_eq!(outcome.removed.len(), 1, "{outcome:?}");
    assert_eq!(outcome.removed[0].id, "reporting_silence");
    assert_eq!(version(&set, "reporting_silence"), None);
    assert_eq!(set.rules.len(), pack_size() - 1);

    let text = fs::read_to_string(r.path("death_or_missing.rhai"))
        .unwrap()
        .replace("id: \"death_or_missing\"", "id: \"death_only\"");
    fs::write(r.path("death_only.rhai"), text).unwrap();
    let outcome = r.reload().await;
    let set = r.next().await;
    assert_eq!(outcome.status, Status::Ok);
    assert_eq!(outcome.added.len(), 1, "{outcome:?}");
    assert_eq!(outcome.added[0].id, "death_only");
    assert!(version(&set, "death_only").is_some());
    assert_eq!(set.rules.len(), pack_size());
}

#[tokio::test]
async fn a_new_file_cannot_take_a_live_rules_id() {
    let r = start(manual());
    let before = r.version("route_spike").unwrap();

    // Sorts before route_spike.rhai, which a fresh `load_dir` would let win.
    let text = fs::read_to_string(r.path("route_spike.rhai")).unwrap() + "\n// copy\n";
    fs::write(r.path("a_copy.rhai"), text).unwrap();
    let outcome = r.reload().await;

    assert_eq!(outcome.status, Status::Refused);
    assert_eq!(outcome.refused.len(), 1, "{outcome:?}");
    assert!(outcome.refused[0].path.ends_with("a_copy.rhai"));
    assert!(
        outcome.refused[0].error.contains("route_spike.rhai"),
        "{outcome:?}"
    );
    assert!(!r.rules.has_changed().unwrap());
    assert_eq!(r.version("route_spike").unwrap(), before);
}

#[tokio::test]
async fn nothing_changed_publishes_nothing() {
    let r = start(polling());
    let generation = r.rules.borrow().generation;

    // Rewritten with the same text: a new file, same rule.
    let path = r.path("route_spike.rhai");
    write_atomically(&path, &fs::read_to_string(&path).unwrap());
    let outcome = r.reload().await;
    // Give polling a few rounds to publish something it should not.
    tokio::time::sleep(Duration::from_millis(200)).await;

    assert_eq!(outcome.status, Status::Unchanged, "{outcome:?}");
    assert_eq!(outcome.generation, generation);
    assert!(!r.rules.has_changed().unwrap());
    assert_eq!(r.rules.borrow().generation, generation);
}

#[tokio::test]
async fn sighup_reloads() {
    // Listening first means the signal can never take the default action (ending the
    // test process), even if it arrives before the reloader listens. Only this test
    // listens for SIGHUP, so the others do not see it.
    let mut ours = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
    let mut r = start(Settings {
        sighup: true,
        ..manual()
    });
    let before = r.version("route_spike").unwrap();
    fs::write(
        r.path("route_spike.rhai"),
        edited(&r.path("route_spike.rhai")),
    )
    .unwrap();

    // The reloader starts listening when its task first runs; until the new version
    // shows, signal again.
    let set = tokio::time::timeout(WAIT, async {
        loop {
            let pid = std::process::id().to_string();
            let status = std::process::Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap();
            assert!(status.success());
            ours.recv().await;
            if let Ok(Ok(())) =
                tokio::time::timeout(Duration::from_millis(100), r.rules.changed()).await
            {
                return r.rules.borrow_and_update().clone();
            }
        }
    })
    .await
    .expect("a reload after SIGHUP");
    assert_ne!(version(&set, "route_spike").unwrap(), before);
}

#[tokio::test]
async fn metrics_show_the_live_rules_and_each_reload() {
    let registry = Registry::new();
    let r = start_in(
        pack_copy(),
        manual(),
        ReloadMetrics::register(&registry).unwrap(),
    );
    let spike = r.version("route_spike").unwrap();
    fs::write(r.path("route_spike.rhai"), "fn condition(g) {").unwrap();
    r.reload().await;
    r.reload().await;

    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    for line in [
        format!("relec_rules_loaded {}", pack_size()),
        "relec_rules_reloads_total{result=\"ok\"} 1".to_owned(),
        "relec_rules_reloads_total{result=\"refused\"} 2".to_owned(),
        "relec_rules_reloads_total{result=\"unchanged\"} 0".to_owned(),
        format!("relec_rules_rule_info{{rule=\"route_spike\",version=\"{spike}\"}} 1"),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
}
