//! Shared by the container tests (tests/docker_e2e.rs, tests/apps_e2e.rs): which grace-init
//! binary goes into the images, building them once per test binary, `docker` calls, and a
//! container that is removed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// The tag the image scripts give the images: `GRACE_INIT_TAG`, else `test`. Separate checkouts
/// on one engine set their own so that they do not test each other's binaries.
pub fn image_tag() -> String {
    std::env::var("GRACE_INIT_TAG").unwrap_or_else(|_| "test".to_string())
}

/// `grace-init/NAME:TAG`.
pub fn image(name: &str) -> String {
    format!("grace-init/{name}:{}", image_tag())
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Newest modification time among the sources a release build depends on.
fn newest_source() -> Option<SystemTime> {
    let mut newest = mtime(&root().join("Cargo.toml"));
    let mut dirs = vec![root().join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Some(t) = mtime(&path) {
                newest = newest.max(Some(t));
            }
        }
    }
    newest
}

/// `GRACE_INIT_TEST_BIN` if set, else the release binary when it is newer than the sources,
/// else the binary cargo built for this test run (static musl as well).
pub fn binary_under_test() -> PathBuf {
    if let Ok(bin) = std::env::var("GRACE_INIT_TEST_BIN") {
        return PathBuf::from(bin);
    }
    let built = PathBuf::from(env!("CARGO_BIN_EXE_grace-init"));
    // <target>/<triple>/debug/grace-init -> <target>/<triple>/release/grace-init
    let release = built
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("release").join("grace-init"));
    if let Some(release) = release {
        if let (Some(rel), Some(src)) = (mtime(&release), newest_source()) {
            if rel >= src {
                return release;
            }
            eprintln!(
                "{} is older than the sources; using {}",
                release.display(),
                built.display()
            );
        }
    }
    built
}

fn docker_available() -> Result<(), String> {
    match Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "`docker info` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run docker: {e}")),
    }
}

/// Runs the image script `script` (relative to the repository) with the binary under test.
fn build_images(script: &str, who: &str) -> Result<(), String> {
    let bin = binary_under_test();
    eprintln!("{who}: building images with {}", bin.display());
    let out = Command::new("bash")
        .arg(root().join(script))
        .env("GRACE_INIT_BIN", &bin)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {script}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{script} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// True when the test should run: Docker is usable and `script` has built the images (once per
/// test binary, remembered in `built`). Skips (false) without Docker unless CI=true; panics when
/// the images cannot be built.
pub fn images_ready(built: &OnceLock<Result<(), String>>, script: &str, who: &str) -> bool {
    static DOCKER: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(why) = DOCKER.get_or_init(docker_available) {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true but Docker is not usable: {why}");
        }
        eprintln!("{who}: SKIPPED, Docker is not usable: {why}");
        return false;
    }
    if let Err(why) = built.get_or_init(|| build_images(script, who)) {
        panic!("{why}");
    }
    true
}

pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run docker")
}

pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A container that is removed (`docker rm -f`) when dropped, pass or fail.
pub struct Container {
    pub name: String,
}

impl Container {
    pub fn name_for(test: &str) -> String {
        format!("grace-init-e2e-{test}-{}", std::process::id())
    }

    /// `docker run -d --name <unique> ARGS...`
    pub fn run(test: &str, args: &[&str]) -> Container {
        let name = Self::name_for(test);
        let _ = docker(&["rm", "-f", &name]);
        let mut full = vec!["run", "-d", "--name", &name];
        full.extend_from_slice(args);
        docker_ok(&full);
        Container { name }
    }

    /// stdout and stderr of every run of the container, in order.
    pub fn logs(&self) -> String {
        let out = docker(&["logs", &self.name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        self.wait_for_log_count(needle, 1, timeout)
    }

    /// Waits until NEEDLE has appeared COUNT times in the logs.
    pub fn wait_for_log_count(&self, needle: &str, count: usize, timeout: Duration) {
        let start = Instant::now();
        loop {
            let logs = self.logs();
            if logs.matches(needle).count() >= count {
                return;
            }
            if start.elapsed() > timeout {
                panic!(
                    "{}: {needle:?} not {count} times in the logs after {timeout:?}:\n{logs}",
                    self.name
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn ip(&self) -> String {
        docker_ok(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.IPAddress}}",
            &self.name,
        ])
    }

    pub fn running(&self) -> bool {
        docker_ok(&["inspect", "-f", "{{.State.Running}}", &self.name]) == "true"
    }

    /// `docker wait`: blocks until the container stops, returns its exit code.
    pub fn exit_code(&self) -> i32 {
        docker_ok(&["wait", &self.name]).parse().expect("exit code")
    }

    /// `docker stop -t SECS` in the background; returns the child to wait on.
    pub fn stop_in_background(&self, secs: u32) -> Child {
        Command::new("docker")
            .args(["stop", "-t", &secs.to_string(), &self.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("docker stop")
    }

    /// `docker stop -t SECS`, returns how long it took.
    pub fn stop(&self, secs: u32) -> Duration {
        let start = Instant::now();
        let status = self.stop_in_background(secs).wait().expect("docker stop");
        assert!(status.success(), "docker stop {} failed", self.name);
        start.elapsed()
    }

    pub fn kill(&self, signal: &str) {
        docker_ok(&["kill", "-s", signal, &self.name]);
    }

    /// `docker start`: the same container (same file system) again.
    pub fn start(&self) {
        docker_ok(&["start", &self.name]);
    }

    /// `docker exec NAME ARGS...`, stdout trimmed; panics on failure.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut full = vec!["exec", &self.name];
        full.extend_from_slice(args);
        docker_ok(&full)
    }

    /// The logs written since the last line containing MARKER (a server's start banner).
    pub fn logs_since_last(&self, marker: &str) -> String {
        let logs = self.logs();
        match logs.rfind(marker) {
            Some(at) => logs[at..].to_string(),
            None => panic!("{}: no {marker:?} in the logs:\n{logs}", self.name),
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.name]);
    }
}
