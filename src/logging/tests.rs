//! The JSON lines against a real JSON parser (Python's): random values with every control
//! character, lossy-decoded invalid UTF-8 and very long runs, each decoded back to the
//! value it came from.

use std::io::Write;
use std::process::{Command, Stdio};

use super::*;
use crate::fuzzing::{for_a_while, in_ci, Rng};

/// The JSON line for a message `msg` with one string field.
fn json_line(msg: &str, value: &str) -> String {
    line(
        Format::Json,
        Level::Warn,
        None,
        msg,
        &[("value".to_owned(), Field::Str(value.into()))],
        usize::MAX,
    )
}

fn random_text(rng: &mut Rng) -> String {
    let mut bytes = Vec::new();
    let len = match rng.below(20) {
        0 => 60_000,
        _ => rng.below(40),
    };
    for _ in 0..len {
        bytes.push(match rng.below(4) {
            // Every control character, and DEL.
            0 => (rng.below(33) as u8).min(0x1f) | if rng.below(9) == 0 { 0x7f } else { 0 },
            1 => *rng.pick(b"\"\\/{}:,"),
            // Anything, valid UTF-8 or not: decoded lossily as meshinit decodes argv.
            2 => rng.next() as u8,
            _ => b' ' + rng.below(95) as u8,
        });
    }
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if rng.below(10) == 0 {
        text.push_str("\u{2028}\u{2029}\u{feff}\u{10ffff}é");
    }
    text
}

#[test]
fn json_lines_parse_back_to_their_values() {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(!in_ci(), "python3 is needed under CI=true");
        eprintln!("SKIP json_lines_parse_back_to_their_values: no python3");
        return;
    }
    for_a_while("json lines", 1_000, |rng| {
        // Pairs of lines: the expected value as hex, then the JSON line.
        let mut input = String::new();
        for _ in 0..500 {
            let msg = random_text(rng);
            let value = random_text(rng);
            let line = json_line(&msg, &value);
            assert_eq!(line.matches('\n').count(), 1, "one line: {line:?}");
            let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
            input.push_str(&format!("{} {}\n{line}", hex(&msg), hex(&value)));
        }
        let checked = python_check(&input);
        assert_eq!(checked, 500, "python checked {checked} of 500");
        500
    });
}

const CHECK: &str = r#"
import datetime, json, sys
n = 0
lines = sys.stdin.read().split("\n")
for i in range(0, len(lines) - 1, 2):
    msg_hex, value_hex = lines[i].split(" ")
    obj = json.loads(lines[i + 1])
    assert obj["msg"] == bytes.fromhex(msg_hex).decode("utf-8"), (i, obj["msg"][:80])
    assert obj["value"] == bytes.fromhex(value_hex).decode("utf-8"), i
    assert obj["level"] == "warn" and isinstance(obj["since_start_ms"], int)
    assert obj["time"].endswith("Z") and len(obj["time"]) == 24, obj["time"]
    datetime.datetime.strptime(obj["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    n += 1
print(n)
"#;

fn python_check(input: &str) -> usize {
    let mut child = Command::new("python3")
        .args(["-c", CHECK])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("python3 output");
    let _ = writer.join();
    assert!(
        out.status.success(),
        "python rejected a line: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// A record as log's macros make it, through the format hook.
fn record_line_of(format: Format, target: &str, kv: &[(&str, log::kv::Value)]) -> String {
    let source: &dyn log::kv::Source = &kv;
    let record = log::Record::builder()
        .args(format_args!("task exited"))
        .level(Level::Info)
        .target(target)
        .key_values(source)
        .build();
    record_line(format, &record)
}

#[test]
fn numbers_and_nulls_stay_numbers_and_nulls() {
    let none: Option<u16> = None;
    let kv = [
        ("code", log::kv::Value::from(3u8)),
        ("status", log::kv::ToValue::to_value(&none)),
        ("phase", log::kv::Value::from("task")),
    ];
    let line = record_line_of(Format::Json, "meshinit::run", &kv);
    assert!(
        line.ends_with(",\"msg\":\"task exited\",\"code\":3,\"status\":null,\"phase\":\"task\"}\n"),
        "{line}"
    );
    let text = record_line_of(Format::Text, "meshinit::run", &kv);
    assert!(
        text.starts_with("meshinit +") && text.ends_with(" info: task exited\n"),
        "{text}"
    );
    // Another crate's record (ureq's) says whose it is.
    let text = record_line_of(Format::Text, "ureq::run", &[]);
    assert!(text.ends_with(" info: ureq::run: task exited\n"), "{text}");
    let json = record_line_of(Format::Json, "ureq::run", &[]);
    assert!(json.ends_with(",\"target\":\"ureq::run\"}\n"), "{json}");
}

#[test]
fn millis_saturates() {
    use std::time::Duration;
    assert_eq!(millis(Duration::from_millis(1234)), 1234);
    assert_eq!(millis(Duration::MAX), u64::MAX);
}

#[test]
fn long_lines_are_cut_to_what_one_pipe_write_takes_whole() {
    // Multi-byte characters and characters JSON escapes six-fold, well past the limit.
    let long = "é\u{1}x".repeat(5_000);
    for format in [Format::Text, Format::Json] {
        let fields = [
            ("url".to_owned(), Field::Str(long.as_str().into())),
            ("code".to_owned(), Field::Int(3)),
        ];
        let text = fitted(format, Level::Info, None, &long, &fields);
        assert!(text.len() <= MAX_LINE, "{format:?}: {} bytes", text.len());
        assert!(
            text.ends_with('\n') && text.contains(" [cut: 20000 bytes]"),
            "{text}"
        );
    }
    let json = fitted(
        Format::Json,
        Level::Info,
        None,
        &long,
        &[("url".to_owned(), Field::Str(long.as_str().into()))],
    );
    assert!(
        json.ends_with("}\n") && json.contains("\"url\":\""),
        "{json}"
    );
    // A line that fits is left whole.
    let short = fitted(Format::Text, Level::Info, None, "short", &[]);
    assert!(short.ends_with(" info: short\n"), "{short}");
}
