//! The documentation's own checks (unit tier): the generated scenario
//! reference matches the knob table, every relative link of the README
//! and the book resolves (file and heading), every page is in the book's
//! summary, and the README stays a front page (at most 250 lines).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// README.md and every Markdown page of the book.
fn pages() -> Vec<PathBuf> {
    let mut out = vec![root().join("README.md")];
    let mut dirs = vec![root().join("docs/src")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The lines of `md` outside fenced code blocks.
fn unfenced(md: &str) -> Vec<&str> {
    let mut fence = false;
    md.lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                fence = !fence;
                return false;
            }
            !fence
        })
        .collect()
}

/// The text of `md` outside fenced code blocks and inline code spans.
fn prose(md: &str) -> String {
    let mut out = String::new();
    for line in unfenced(md) {
        // Drop inline code: every other backtick-delimited part.
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                out.push_str(part);
            }
        }
        out.push('\n');
    }
    out
}

/// The targets of `[text](target)` links in `md`'s prose.
fn links(md: &str) -> Vec<String> {
    let text = prose(md);
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].to_string());
        }
    }
    out
}

/// mdBook's id of a heading: lower case, punctuation dropped but `-`
/// and `_`, spaces as `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| match c {
            c if c.is_alphanumeric() => Some(c.to_lowercase().next().unwrap_or(c)),
            ' ' | '-' => Some('-'),
            '_' => Some('_'),
            _ => None,
        })
        .collect()
}

/// The ids of `md`'s headings.
fn anchors(md: &str) -> BTreeSet<String> {
    unfenced(md)
        .into_iter()
        .filter(|line| line.starts_with('#'))
        .map(|line| slug(&line.trim_start_matches('#').replace('`', "")))
        .collect()
}

#[test]
fn the_scenario_reference_page_is_what_scenario_keys_prints() {
    let path = root().join("docs/src/scenario-reference.md");
    let page = std::fs::read_to_string(&path).unwrap();
    let generated =
        migbench_model::reference::markdown(migbench_model::KEYS, migbench_model::knobs::SECTIONS);
    assert!(
        page == generated,
        "{} differs from the knob table: regenerate it with `migbench scenario keys --format markdown > docs/src/scenario-reference.md`",
        path.display()
    );
}

#[test]
fn every_relative_link_of_the_readme_and_the_book_resolves_to_a_file_and_heading() {
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for link in links(&text) {
            if link.starts_with("https://") || link.starts_with("http://") {
                continue;
            }
            let (file, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            assert!(
                target.is_file(),
                "{}: the link `{link}` points at no file",
                page.display()
            );
            let inside = target.canonicalize().unwrap();
            assert!(
                inside.starts_with(root().canonicalize().unwrap()),
                "{}: the link `{link}` leaves the repository",
                page.display()
            );
            if !anchor.is_empty() {
                let ids = anchors(&std::fs::read_to_string(&target).unwrap());
                assert!(
                    ids.contains(anchor),
                    "{}: the link `{link}` names no heading of {} ({ids:?})",
                    page.display(),
                    target.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} links checked");
}

#[test]
fn every_page_of_the_book_is_in_its_summary_and_the_readme_is_short() {
    let src = root().join("docs/src");
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).unwrap();
    let listed: BTreeSet<String> = links(&summary).into_iter().collect();
    for page in pages().into_iter().filter(|p| p.starts_with(&src)) {
        let rel = page
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .to_string();
        if rel == "SUMMARY.md" {
            continue;
        }
        assert!(listed.contains(&rel), "{rel} is not in docs/src/SUMMARY.md");
    }
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let n = readme.lines().count();
    assert!(
        n <= 250,
        "README.md has {n} lines: the manual belongs in docs/"
    );
}

#[test]
fn links_and_headings_are_read_as_mdbook_reads_them() {
    assert_eq!(
        links("see [a](x.md#b-c) and `[not](code)`\n```\n[no](fence)\n```\n"),
        ["x.md#b-c"]
    );
    assert_eq!(
        slug(" Is 100 Mbit enough? (link-speed)"),
        "is-100-mbit-enough-link-speed"
    );
    assert_eq!(slug("Design notes"), "design-notes");
}
