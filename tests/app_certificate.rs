//! An empty or short app certificate is refused wherever it comes from (flag,
//! environment, file), by the real binary, before it listens or signs.

mod common;

use common::TempDir;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `rtm args…`; a server that starts instead of refusing is killed
/// after a while and reported as such (that is the bug these tests catch).
fn run(home: &TempDir, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtm"));
    cmd.args(args)
        .env("RTM_HOME", home.path())
        .env_remove("RTM_APP_CERTIFICATE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start rtm");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if child.try_wait().expect("wait for rtm").is_some() {
            return child.wait_with_output().expect("collect rtm output");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("collect rtm output");
    panic!(
        "rtm {args:?} kept running instead of refusing the certificate; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A home of the test's own (so no user config is read), with its config dir.
fn home(name: &str) -> TempDir {
    let home = TempDir::new(&format!("cert-{name}"));
    std::fs::create_dir_all(home.path().join("config")).expect("create config dir");
    home
}

fn assert_refused(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "rtm accepted it; stderr: {stderr}");
    assert!(stderr.contains(needle), "stderr: {stderr}");
}

const SERVE: [&str; 4] = ["serve", "--listen", "127.0.0.1:0", "--data"];

#[test]
fn serve_refuses_an_empty_certificate_from_the_flag() {
    let home = home("flag");
    let data = home.path().join("data").display().to_string();
    let out = run(
        &home,
        &[&SERVE[..], &[&data, "--app-certificate", ""]].concat(),
        &[],
    );
    assert_refused(&out, "--app-certificate: the app certificate is empty");
}

#[test]
fn serve_refuses_an_empty_certificate_from_the_environment() {
    let home = home("env");
    let data = home.path().join("data").display().to_string();
    let out = run(
        &home,
        &[&SERVE[..], &[&data]].concat(),
        &[("RTM_APP_CERTIFICATE", "")],
    );
    assert_refused(&out, "RTM_APP_CERTIFICATE: the app certificate is empty");
}

#[test]
fn serve_refuses_an_empty_or_short_certificate_from_the_file() {
    let home = home("file");
    let data = home.path().join("data").display().to_string();
    let file = home.path().join("config").join("server.toml");
    std::fs::write(&file, "app_certificate = \"\"\n").expect("write config");
    let out = run(&home, &[&SERVE[..], &[&data]].concat(), &[]);
    assert_refused(&out, "app_certificate in");
    std::fs::write(&file, "app_certificate = \"hunter2\"\n").expect("write config");
    let out = run(&home, &[&SERVE[..], &[&data]].concat(), &[]);
    assert_refused(&out, "is 7 characters long");
}

#[test]
fn token_refuses_to_sign_with_an_empty_certificate_and_signs_with_a_good_one() {
    let home = home("token");
    let out = run(
        &home,
        &["token", "--uid", "alice", "--app-certificate", ""],
        &[],
    );
    assert_refused(&out, "the app certificate is empty");
    let out = run(
        &home,
        &["token", "--uid", "alice"],
        &[("RTM_APP_CERTIFICATE", "0123456789abcdef")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).trim().is_empty());
}
