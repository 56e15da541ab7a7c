//! `rtm serve --check-config` as the binary: every problem of a bad file is
//! named and the exit status says it; a good file is "configuration OK".

mod common;

use std::process::Command;

use common::TempDir;

fn check(home: &std::path::Path, file: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rtm"))
        .args(["serve", "--check-config", "--config"])
        .arg(file)
        .env("RTM_HOME", home)
        .env_remove("RTM_LISTEN")
        .env_remove("RTM_DATA")
        .env_remove("RTM_LOG")
        .env_remove("RTM_CLUSTER")
        .env_remove("RTM_APP_CERTIFICATE")
        .output()
        .expect("run rtm serve --check-config")
}

#[test]
fn every_bad_key_and_value_is_named() {
    let home = TempDir::new("check-config-bad");
    let file = home.path().join("server.toml");
    std::fs::write(
        &file,
        r#"
listen = "127.0.0.1:notaport"
heartbeat_intervall_s = 5
queue_frames = 0
grace_s = "thirty"
app_certificate = "short"
log_level = "rtm=["

[cluster]
redis_url = "http://127.0.0.1:6379"
prefixx = "rtm"
"#,
    )
    .unwrap();
    let out = check(home.path(), &file);
    assert!(!out.status.success(), "a bad file fails the check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "`heartbeat_intervall_s`",
        "`cluster.prefixx`",
        "`queue_frames`",
        "`grace_s`",
        "`listen`",
        "`app_certificate`",
        "`cluster.redis_url`",
        "`log_level`",
        "8 problem(s)",
    ] {
        assert!(stderr.contains(needle), "{needle} missing from:\n{stderr}");
    }
    assert!(out.stdout.is_empty(), "nothing is served");
}

#[test]
fn a_good_file_is_ok() {
    let home = TempDir::new("check-config-good");
    let file = home.path().join("server.toml");
    std::fs::write(
        &file,
        "heartbeat_interval_s = 7\n[cluster]\nprefix = \"x\"\n",
    )
    .unwrap();
    let out = check(home.path(), &file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("configuration OK: {}", file.display())),
        "{stdout}"
    );
}
