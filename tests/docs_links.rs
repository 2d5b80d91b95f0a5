//! The README and the manual in docs/ cannot rot: every relative link points at a file that exists
//! and every `#anchor` at a heading of its page (GitHub's and mdBook's rule), pages in docs/ link only
//! inside docs/ (anything else is broken on the mdBook site), and SUMMARY.md lists every page.
//! Pure file reading, no control plane; `make docs` runs it after building the site.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A link as written, with the line it is on.
struct Link {
    line: usize,
    dest: String,
}

struct Page {
    links: Vec<Link>,
    anchors: BTreeSet<String>,
}

fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS | Options::ENABLE_FOOTNOTES
}

/// The id GitHub and mdBook give a heading: lower case, whitespace to `-`, letters, digits, `-` and
/// `_` kept, everything else dropped.
fn slug(text: &str) -> String {
    text.trim()
        .chars()
        .filter_map(|c| {
            if c.is_whitespace() {
                Some('-')
            } else if c.is_alphanumeric() || c == '-' || c == '_' {
                Some(c)
            } else {
                None
            }
        })
        .flat_map(char::to_lowercase)
        .collect()
}

fn parse(text: &str) -> Page {
    let line_of = |offset: usize| text[..offset].matches('\n').count() + 1;
    let mut links = Vec::new();
    let mut anchors = BTreeSet::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut heading: Option<String> = None;
    for (event, range) in Parser::new_ext(text, options()).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                let base = slug(&heading.take().unwrap_or_default());
                // A repeated heading gets -1, -2, ... on both GitHub and mdBook.
                let n = seen.entry(base.clone()).or_insert(0);
                anchors.insert(if *n == 0 { base.clone() } else { format!("{base}-{n}") });
                *n += 1;
            }
            Event::Start(Tag::Link { dest_url, .. }) | Event::Start(Tag::Image { dest_url, .. }) => {
                links.push(Link { line: line_of(range.start), dest: dest_url.into_string() })
            }
            _ => {}
        }
    }
    Page { links, anchors }
}

fn is_external(dest: &str) -> bool {
    dest.contains("://") || dest.starts_with("mailto:")
}

/// `base/../x` without touching the file system (the target may not exist).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// Every problem with the links of `root`'s README.md and docs/*.md, and how many links were checked.
fn broken_links(root: &Path) -> (Vec<String>, usize) {
    let docs = root.join("docs");
    let relative = |path: &Path| path.strip_prefix(root).unwrap_or(path).display().to_string();
    let files = markdown_files(root);
    let mut pages: HashMap<PathBuf, Page> = HashMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable markdown");
        pages.insert(file.clone(), parse(&text));
    }
    let anchors_of = |path: &Path| -> BTreeSet<String> {
        match pages.get(path) {
            Some(page) => page.anchors.clone(),
            None => std::fs::read_to_string(path).map(|text| parse(&text).anchors).unwrap_or_default(),
        }
    };

    let mut problems = Vec::new();
    let mut checked = 0;
    for file in &files {
        let in_docs = file.starts_with(&docs);
        for link in &pages[file].links {
            if is_external(&link.dest) {
                continue;
            }
            checked += 1;
            let at = format!("{}:{}: `{}`", relative(file), link.line, link.dest);
            let (path, anchor) = match link.dest.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (link.dest.as_str(), None),
            };
            let target = if path.is_empty() {
                file.clone()
            } else if path.starts_with('/') {
                problems.push(format!("{at}: absolute path; link relative to the file"));
                continue;
            } else {
                normalize(&file.parent().expect("file in a directory").join(path))
            };
            if !target.exists() {
                problems.push(format!("{at}: {} does not exist", relative(&target)));
                continue;
            }
            if in_docs && !target.starts_with(&docs) {
                problems.push(format!(
                    "{at}: leaves docs/, so it is broken on the mdBook site; name the file in backticks instead"
                ));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            if target.extension().is_none_or(|e| e != "md") {
                problems.push(format!("{at}: an #anchor into a file that is not Markdown"));
                continue;
            }
            let anchors = anchors_of(&target);
            if !anchors.contains(anchor) {
                problems.push(format!(
                    "{at}: no heading of {} has the anchor #{anchor} (its anchors: {})",
                    relative(&target),
                    anchors.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    (problems, checked)
}

/// Pages of `root`/docs that SUMMARY.md does not list.
fn pages_missing_from_summary(root: &Path) -> Vec<String> {
    let docs = root.join("docs");
    let summary = std::fs::read_to_string(docs.join("SUMMARY.md")).expect("docs/SUMMARY.md exists");
    let listed: BTreeSet<PathBuf> = parse(&summary)
        .links
        .iter()
        .filter(|l| !is_external(&l.dest))
        .map(|l| normalize(&docs.join(l.dest.split('#').next().unwrap_or_default())))
        .collect();
    markdown_files(root)
        .into_iter()
        .filter(|p| p.starts_with(&docs) && p.file_name().is_some_and(|n| n != "SUMMARY.md"))
        .filter(|p| !listed.contains(p))
        .map(|p| p.strip_prefix(root).unwrap_or(&p).display().to_string())
        .collect()
}

#[test]
fn every_link_in_the_readme_and_docs_resolves() {
    let (problems, checked) = broken_links(Path::new(ROOT));
    assert!(problems.is_empty(), "broken links:\n{}", problems.join("\n"));
    assert!(checked > 20, "only {checked} relative links found: is the parser seeing the files?");
}

#[test]
fn summary_lists_every_page_of_docs() {
    let missing = pages_missing_from_summary(Path::new(ROOT));
    assert!(missing.is_empty(), "pages missing from docs/SUMMARY.md (mdBook would not build them): {missing:?}");
}

/// The checker itself, on a small tree with one of each mistake.
#[test]
fn the_checker_finds_each_kind_of_broken_link() {
    let root = std::env::temp_dir().join(format!("atlantiplex-docs-links-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("docs")).unwrap();
    let write = |path: &str, text: &str| std::fs::write(root.join(path), text).unwrap();
    write(
        "README.md",
        "# Front\n[ok](docs/a.md#the-api-v2) [ok](#front) [gone](docs/gone.md) [anchor](docs/a.md#nope)\n\
         [web](https://example.com/x.md) `[in code](docs/gone.md)`\n```sh\n[in a block](docs/gone.md)\n```\n",
    );
    write("docs/SUMMARY.md", "# Summary\n- [A](a.md)\n");
    write("docs/a.md", "# The API (v2)\n[out](../README.md) [self](#the-api-v2) [b](b.md)\n");
    write("docs/b.md", "# B\n");
    let (mut problems, checked) = broken_links(&root);
    problems.sort();
    assert_eq!(checked, 8, "{problems:#?}");
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].starts_with("README.md:2: `docs/a.md#nope`: no heading of docs/a.md"), "{problems:#?}");
    assert!(problems[1].starts_with("README.md:2: `docs/gone.md`: docs/gone.md does not exist"), "{problems:#?}");
    assert!(problems[2].starts_with("docs/a.md:2: `../README.md`: leaves docs/"), "{problems:#?}");
    assert_eq!(pages_missing_from_summary(&root), vec!["docs/b.md".to_string()]);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn anchors_follow_github_and_mdbook() {
    assert_eq!(slug("Billing (Stripe)"), "billing-stripe");
    assert_eq!(slug("RBAC: what the operator may do, and why"), "rbac-what-the-operator-may-do-and-why");
    assert_eq!(slug("The README's Walkthrough is a test"), "the-readmes-walkthrough-is-a-test");
    assert_eq!(slug("snake_case and --flags"), "snake_case-and---flags");
    let page = parse("# A\n## `code` B\n## A\n");
    assert_eq!(page.anchors, BTreeSet::from(["a".into(), "code-b".into(), "a-1".into()]));
}
