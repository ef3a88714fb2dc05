//! Checks the man pages under man/: every page renders with man(1) without a groff
//! warning, wormvault.1 names every command and long option that the binary's
//! `--help` lists, and wormvault-mount.8 names every `-o` option that
//! `wormvault mount --help` lists.
//!
//! The test needs man-db and groff-base (`apt-get install -y man-db groff-base`). It
//! fails when `man` is missing, so that a machine without them cannot pass it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const COMMAND_PAGE: &str = "man/wormvault.1";
const MOUNT_PAGE: &str = "man/wormvault-mount.8";

/// Line length for the text that is searched: wide enough that no paragraph of the
/// pages wraps, so an option name is never split at a line end.
const SEARCH_WIDTH: &str = "4000";

fn page_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Lists every file in man/ whose name ends in a section number, such as wormvault.1.
fn all_pages() -> Vec<PathBuf> {
    let dir = page_path("man");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("failed to list {}: {error}", dir.display()))
        .map(|entry| entry.expect("failed to read an entry of man/").path())
        .filter(|path| {
            path.extension().is_some_and(|extension| {
                extension.len() == 1
                    && extension
                        .to_string_lossy()
                        .chars()
                        .all(|c| c.is_ascii_digit())
            })
        })
        .collect();
    pages.sort();
    for required in [COMMAND_PAGE, MOUNT_PAGE] {
        assert!(
            pages.contains(&page_path(required)),
            "{required} is missing from man/"
        );
    }
    pages
}

/// Runs man(1) with ARGS and a fixed locale, failing with install advice when it is
/// missing.
fn run_man(args: &[&str], page: &Path, width: Option<&str>) -> Output {
    let mut command = Command::new("man");
    command
        .args(args)
        .arg(page)
        .env("LC_ALL", "C.UTF-8")
        .env_remove("MANPAGER")
        .env_remove("PAGER");
    match width {
        Some(width) => command.env("MANWIDTH", width),
        None => command.env_remove("MANWIDTH"),
    };
    match command.output() {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
            "man is not installed, so the man pages cannot be checked. \
             Install it with `apt-get install -y man-db groff-base`"
        ),
        Err(error) => panic!("failed to run man on {}: {error}", page.display()),
    }
}

/// Removes grotty's overstrike (`c\bc`, `_\bc`) and SGR sequences, and maps the
/// hyphen and minus characters that groff may output to an ASCII hyphen-minus.
fn plain_text(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        if chars.peek() == Some(&'\u{8}') {
            chars.next();
            continue;
        }
        out.push(match c {
            '\u{2010}' | '\u{2011}' | '\u{2212}' => '-',
            other => other,
        });
    }
    out
}

/// Renders PAGE as plain text, one paragraph per line, with runs of spaces collapsed.
fn page_text(relative: &str) -> String {
    let page = page_path(relative);
    let output = run_man(&["-l"], &page, Some(SEARCH_WIDTH));
    assert!(
        output.status.success(),
        "man -l {} failed: {}",
        page.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    plain_text(&output.stdout)
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Checks whether TEXT contains NAME as a whole token: not preceded or followed by a letter,
/// digit, underscore or hyphen.
fn contains_token(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(start, _)| {
        let before = text[..start].chars().next_back();
        let after = text[start + name.len()..].chars().next();
        !before.is_some_and(is_name_char) && !after.is_some_and(is_name_char)
    })
}

/// Runs `wormvault ARGS... --help` and returns its standard output.
fn help_of(command_path: &[String]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_wormvault"))
        .args(command_path)
        .arg("--help")
        .output()
        .expect("failed to run wormvault --help");
    assert!(
        output.status.success(),
        "wormvault {} --help failed: {}",
        command_path.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

/// Returns the lines of the help section under the line HEADING ("Commands:").
fn section<'a>(help: &'a str, heading: &str) -> Vec<&'a str> {
    help.lines()
        .skip_while(|line| line.trim() != heading)
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .collect()
}

/// Parses the subcommand names listed under "Commands:".
fn subcommands(help: &str) -> Vec<String> {
    section(help, "Commands:")
        .iter()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Parses the long options (`--name`) in the option column under "Options:".
fn long_options(help: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in section(help, "Options:") {
        let trimmed = line.trim_start();
        let column = trimmed.split("  ").next().unwrap_or("");
        for word in column.split(|c: char| c.is_whitespace() || c == ',') {
            let Some(rest) = word.strip_prefix("--") else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if !name.is_empty() {
                names.push(format!("--{name}"));
            }
        }
    }
    names
}

/// Collects every command path below the top level, such as ["key", "add"], with the long
/// options of all help texts. clap's automatic `help` subcommands are left out, because
/// they take no options and the page documents them once, as `wormvault help`.
fn command_tree() -> (Vec<Vec<String>>, BTreeSet<String>) {
    let mut paths = Vec::new();
    let mut options = BTreeSet::new();
    let mut pending: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(path) = pending.pop() {
        let help = help_of(&path);
        options.extend(long_options(&help));
        for name in subcommands(&help) {
            if name == "help" {
                continue;
            }
            let mut child = path.clone();
            child.push(name);
            paths.push(child.clone());
            pending.push(child);
        }
    }
    (paths, options)
}

/// Parses the keys of the `-o` option as `wormvault mount --help` lists them, such as
/// "allow_other", "reserve" and "x-systemd.*".
fn mount_option_keys() -> Vec<String> {
    let help = help_of(&["mount".to_string()]);
    let mut lines = help
        .lines()
        .skip_while(|line| !line.trim_start().starts_with("-o "));
    let first = lines.next().expect("wormvault mount --help lists -o");
    let mut paragraph = first.trim().to_string();
    for line in
        lines.take_while(|line| !line.trim_start().starts_with('-') && !line.trim().is_empty())
    {
        paragraph.push(' ');
        paragraph.push_str(line.trim());
    }
    let (_, list) = paragraph
        .split_once("comma-separated:")
        .unwrap_or_else(|| panic!("the -o help has no \"comma-separated:\" list: {paragraph}"));
    let list = list
        .replace(" are accepted and ignored", "")
        .replace(';', ",")
        .replace(" and ", ",");
    let mut keys = Vec::new();
    for item in list.split(',') {
        let Some(word) = item.split_whitespace().next() else {
            continue;
        };
        let key: String = word
            .chars()
            .take_while(|c| *c != '=' && *c != '[')
            .collect();
        let key = key.trim_end_matches('.');
        if !key.is_empty() {
            keys.push(key.to_string());
        }
    }
    keys
}

#[test]
fn pages_render_without_warnings() {
    for page in all_pages() {
        let output = run_man(&["--warnings=w", "-l", "-Tutf8"], &page, None);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "man -l -Tutf8 {} failed: {stderr}",
            page.display()
        );
        assert!(
            stderr.trim().is_empty(),
            "man -l -Tutf8 {} printed warnings:\n{stderr}",
            page.display()
        );
        assert!(
            !output.stdout.is_empty(),
            "man -l -Tutf8 {} printed nothing",
            page.display()
        );
    }
}

/// The searched pages must also render cleanly at the wide line length. Other pages
/// are left out: tbl warns about text blocks at that width, which no reader uses.
#[test]
fn searched_pages_render_wide_without_warnings() {
    for page in [COMMAND_PAGE, MOUNT_PAGE].map(page_path) {
        let output = run_man(&["--warnings=w", "-l"], &page, Some(SEARCH_WIDTH));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "man -l {} failed: {stderr}",
            page.display()
        );
        assert!(
            stderr.trim().is_empty(),
            "man -l {} at width {SEARCH_WIDTH} printed warnings:\n{stderr}",
            page.display()
        );
    }
}

#[test]
fn command_page_names_every_subcommand() {
    let text = page_text(COMMAND_PAGE);
    let (paths, _) = command_tree();
    assert!(
        paths.iter().any(|path| path == &["mount"]),
        "the help lists no mount command: {paths:?}"
    );
    let mut missing = Vec::new();
    for path in paths
        .iter()
        .map(|path| format!("wormvault {}", path.join(" ")))
        .chain(["wormvault help".to_string()])
    {
        if !contains_token(&text, &path) {
            missing.push(path);
        }
    }
    assert!(
        missing.is_empty(),
        "{COMMAND_PAGE} does not mention these commands: {missing:?}"
    );
}

#[test]
fn command_page_names_every_long_option() {
    let text = page_text(COMMAND_PAGE);
    let (_, options) = command_tree();
    assert!(
        options.contains("--passphrase-file"),
        "no --passphrase-file found in the help texts: {options:?}"
    );
    let missing: Vec<&String> = options
        .iter()
        .filter(|option| !contains_token(&text, option))
        .collect();
    assert!(
        missing.is_empty(),
        "{COMMAND_PAGE} does not mention these long options: {missing:?}"
    );
}

#[test]
fn mount_page_names_every_mount_option() {
    let text = page_text(MOUNT_PAGE);
    let keys = mount_option_keys();
    assert!(
        keys.iter().any(|key| key == "commit_interval"),
        "no commit_interval in the -o help: {keys:?}"
    );
    let missing: Vec<&String> = keys
        .iter()
        .filter(|key| !contains_token(&text, key))
        .collect();
    assert!(
        missing.is_empty(),
        "{MOUNT_PAGE} does not mention these mount options: {missing:?}"
    );
}

#[test]
fn help_parsers_handle_samples() {
    let help = "Options:\n  -v, --verbose...  Log more\n      --passphrase-file <FILE>  Read it; see --other\n\n";
    assert_eq!(long_options(help), ["--verbose", "--passphrase-file"]);
    assert!(contains_token("use --json here", "--json"));
    assert!(!contains_token("use --json-lines here", "--json"));
    assert!(!contains_token("a--json b", "--json"));
    assert!(contains_token("reserve=BYTES", "reserve"));
    assert_eq!(
        plain_text("a\u{8}ab\u{2010}c\u{1b}[1md".as_bytes()),
        "ab-cd"
    );
}
