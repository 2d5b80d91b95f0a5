//! The README's Walkthrough, run as written, so the front door never breaks: every ```sh / ```bash
//! block under `## Walkthrough`, in order, as one bash script (`set -euo pipefail`), against a
//! control plane prepared as `make run` prepares it — CRDs and Plans installed, the operator running
//! under its own identity with its webhook on loopback, then `examples/` applied. The script runs in a
//! scratch directory laid out like the repository root after `make run` (`target/cluster/kubeconfig`),
//! with the tools directory on PATH. Every command must exit 0; `#` comments (the expected output) are
//! not compared. The convention is in docs/development.md ("The README's Walkthrough is a test").

mod support;

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Parser, Tag, TagEnd};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::ROOT;

/// Generous: the commands' own `kubectl wait --timeout`s bound each step; this catches a command
/// that would wait forever (a finalizer never released) on a busy 2-core machine.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The shell blocks of the section headed `## Walkthrough`, in order.
fn walkthrough_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let (mut in_section, mut heading, mut block): (bool, Option<(HeadingLevel, String)>, Option<String>) =
        (false, None, None);
    for event in Parser::new(markdown) {
        match event {
            Event::Start(Tag::Heading { level, .. }) => heading = Some((level, String::new())),
            Event::End(TagEnd::Heading(_)) => {
                if let Some((level, text)) = heading.take()
                    && level <= HeadingLevel::H2
                {
                    in_section = level == HeadingLevel::H2 && text.trim() == "Walkthrough";
                }
            }
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) if in_section => {
                let lang = info.split_whitespace().next().unwrap_or_default();
                if lang == "sh" || lang == "bash" {
                    block = Some(String::new());
                }
            }
            Event::Text(text) => {
                if let Some((_, h)) = heading.as_mut() {
                    h.push_str(&text);
                } else if let Some(b) = block.as_mut() {
                    b.push_str(&text);
                }
            }
            Event::End(TagEnd::CodeBlock) => blocks.extend(block.take()),
            _ => {}
        }
    }
    blocks
}

#[test]
fn the_walkthrough_is_found() {
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).expect("README.md");
    let script = walkthrough_blocks(&readme).join("\n");
    // The commands a newcomer types first, as the README shows them; if the section were renamed
    // or its blocks lost their `sh` tag, the walkthrough test below would pass vacuously.
    let first = ["export KUBECONFIG=$PWD/target/cluster/kubeconfig", "kubectl get plans", "kubectl get orgs -o wide"];
    for command in first {
        assert!(script.contains(command), "the README's Walkthrough no longer runs `{command}`:\n{script}");
    }
    let parsed = walkthrough_blocks(
        "# T\n## Walkthrough\n```sh\na\n```\n```yaml\nb\n```\n### Sub\n```bash\nc\n```\n## Next\n```sh\nd\n```\n",
    );
    assert_eq!(parsed, vec!["a\n".to_string(), "c\n".to_string()]);
}

#[test]
fn the_readme_walkthrough_runs_as_written() {
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).expect("README.md");
    let blocks = walkthrough_blocks(&readme);
    assert!(!blocks.is_empty(), "no ```sh blocks under ## Walkthrough in README.md");

    // As `make run`: CRDs and Plans, the operator under its own identity, then examples/.
    let h = support::cluster_with_operator();
    h.kubectl_ok(&["apply", "--server-side", "-f", &format!("{ROOT}/examples/")]);

    // The repository root as the reader's second shell sees it: target/cluster/kubeconfig.
    let workdir = h.plane.dir.join("readme-walkthrough");
    std::fs::create_dir_all(workdir.join("target/cluster")).expect("scratch directory");
    std::fs::copy(&h.plane.kubeconfig, workdir.join("target/cluster/kubeconfig")).expect("kubeconfig");
    let script = format!(
        "set -euo pipefail\nPS4='+ README: '\nset -x\ntrap 'echo \"README walkthrough: exit $? from: $BASH_COMMAND\" >&2' ERR\n{}",
        blocks.join("\n")
    );
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![h.plane.tools_bin.clone()];
    paths.extend(std::env::split_paths(&path));
    let log_path = h.logs().join("readme-walkthrough.log");
    let log = std::fs::File::create(&log_path).expect("walkthrough log");
    let started = Instant::now();
    let mut child = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &script])
        .current_dir(&workdir)
        .env("PATH", std::env::join_paths(paths).expect("PATH"))
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .expect("bash runs");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for bash") {
            break Some(status);
        }
        if started.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut transcript = String::new();
    std::fs::File::open(&log_path).and_then(|mut f| f.read_to_string(&mut transcript)).expect("read log");
    println!("{transcript}");
    match status {
        Some(s) if s.success() => println!("README walkthrough passed in {:.1?}", started.elapsed()),
        Some(s) => panic!("the README's Walkthrough failed ({s}); transcript:\n{transcript}"),
        None => panic!("the README's Walkthrough did not finish within {SCRIPT_TIMEOUT:?}; transcript:\n{transcript}"),
    }
}
