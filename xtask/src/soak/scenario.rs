//! What the soak's editor works on: the open files (Rust, Python, TypeScript, with multi-byte
//! text), the model's replies, the words the user types, the files that change on disk, and the
//! seeded choices between them.
//!
//! Every open file has two marked areas, found again by their marker comments before each use
//! because the text moves: the notes, where the user types (the line just above
//! `soak-notes-end`), and the job block between `soak-job-begin` and `soak-job-end`, which every
//! inline edit rewrites. Keeping the two apart is what lets the soak say which typed words must
//! survive: nothing but the user ever touches the notes.

use testkit::lsp_client::{Encoding, LinePosition, offset_to_position};

/// The marker whose line ends the notes; the user types at the end of the line above it.
pub const NOTES_END: &str = "soak-notes-end";
/// The line before the job block.
pub const JOB_BEGIN: &str = "soak-job-begin";
/// The line after the job block.
pub const JOB_END: &str = "soak-job-end";

/// A language of the soak's open files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    Rust,
    Python,
    TypeScript,
}

impl Language {
    pub const ALL: [Language; 3] = [Language::Rust, Language::Python, Language::TypeScript];

    pub fn language_id(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::TypeScript => "typescript",
        }
    }

    /// The workspace path of the open file in this language.
    pub fn open_path(self) -> &'static str {
        match self {
            Language::Rust => "src/main.rs",
            Language::Python => "tools/report.py",
            Language::TypeScript => "web/app.ts",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Language::Rust => "rs",
            Language::Python => "py",
            Language::TypeScript => "ts",
        }
    }

    fn comment(self) -> &'static str {
        match self {
            Language::Python => "#",
            Language::Rust | Language::TypeScript => "//",
        }
    }

    /// What the user types to start a new line of notes.
    pub fn new_notes_line(self) -> String {
        format!("\n{}", self.comment())
    }

    /// The file as the editor opens it.
    pub fn initial_text(self) -> String {
        let c = self.comment();
        let notes = format!(
            "{c} soak notes: the user types on the line below\n{c} ñandú:\n{c} {NOTES_END}\n"
        );
        let (head, tail) = match self {
            Language::Rust => (
                "use std::collections::HashMap;\n\n/// Greets in several scripts: 日本語, Ελληνικά, 😀.\nfn greeting() -> &'static str {\n    \"héllo wörld 👋\"\n}\n",
                "\nfn main() {\n    let mut counts: HashMap<&str, u32> = HashMap::new();\n    counts.insert(greeting(), soak_job_0());\n    println!(\"{counts:?}\");\n}\n",
            ),
            Language::Python => (
                "import sys\n\n\ndef greeting():\n    \"\"\"Greets in several scripts: 日本語, Ελληνικά, 😀.\"\"\"\n    return \"héllo wörld 👋\"\n",
                "\n\nif __name__ == \"__main__\":\n    print(greeting(), soak_job_0(), file=sys.stderr)\n",
            ),
            Language::TypeScript => (
                "import { readFileSync } from \"fs\";\n\n/** Greets in several scripts: 日本語, Ελληνικά, 😀. */\nexport function greeting(): string {\n  return \"héllo wörld 👋\";\n}\n",
                "\nconsole.log(greeting(), soakJob0(), readFileSync);\n",
            ),
        };
        format!(
            "{notes}{head}\n{c} {JOB_BEGIN}\n{}\n{c} {JOB_END}\n{tail}",
            self.block(0, 3)
        )
    }

    /// The job block's text after job `job` (no trailing newline: the block's range ends before
    /// the newline of its last line). `steps` varies its length.
    pub fn block(self, job: u64, steps: u64) -> String {
        let mut lines = Vec::new();
        match self {
            Language::Rust => {
                lines.push(format!("fn soak_job_{job}() -> u32 {{"));
                lines.push(format!("    // job {job} rewrote this: ñandú 日本 😀"));
                lines.push("    let mut total = 0;".to_string());
                for step in 0..steps {
                    lines.push(format!("    total += {step} * {job}; // «{step}»"));
                }
                lines.push("    total".to_string());
                lines.push("}".to_string());
            }
            Language::Python => {
                lines.push(format!("def soak_job_{job}():"));
                lines.push(format!("    # job {job} rewrote this: ñandú 日本 😀"));
                lines.push("    total = 0".to_string());
                for step in 0..steps {
                    lines.push(format!("    total += {step} * {job}  # «{step}»"));
                }
                lines.push("    return total".to_string());
            }
            Language::TypeScript => {
                lines.push(format!("export function soakJob{job}(): number {{"));
                lines.push(format!("  // job {job} rewrote this: ñandú 日本 😀"));
                lines.push("  let total = 0;".to_string());
                for step in 0..steps {
                    lines.push(format!("  total += {step} * {job}; // «{step}»"));
                }
                lines.push("  return total;".to_string());
                lines.push("}".to_string());
            }
        }
        lines.join("\n")
    }

    /// The content of a file that is not open, written to disk by the soak.
    pub fn disk_file(self, generation: u64) -> String {
        match self {
            Language::Rust => format!(
                "//! Generated on disk, generation {generation}: ñandú 😀.\n\npub fn on_disk_{generation}() -> u64 {{\n    {generation}\n}}\n\npub struct Disk{generation} {{\n    pub name: String,\n}}\n"
            ),
            Language::Python => format!(
                "\"\"\"Generated on disk, generation {generation}: ñandú 😀.\"\"\"\n\n\ndef on_disk_{generation}():\n    return {generation}\n\n\nclass Disk{generation}:\n    name = \"日本\"\n"
            ),
            Language::TypeScript => format!(
                "// Generated on disk, generation {generation}: ñandú 😀.\n\nexport function onDisk{generation}(): number {{\n  return {generation};\n}}\n\nexport class Disk{generation} {{\n  name = \"日本\";\n}}\n"
            ),
        }
    }
}

/// Byte offset of the start of the line holding `marker`, if present.
fn marker_line_start(text: &str, marker: &str) -> Option<usize> {
    let found = text.find(marker)?;
    Some(text[..found].rfind('\n').map_or(0, |newline| newline + 1))
}

/// Where the user types: the end of the line above the notes-end marker (a byte offset).
pub fn typing_offset(text: &str) -> Option<usize> {
    let line_start = marker_line_start(text, NOTES_END)?;
    // The newline that ends the line above; the notes always have at least one line there.
    line_start.checked_sub(1)
}

/// The job block as a byte range: from the start of the line after `soak-job-begin` to the end
/// of the content of the line before `soak-job-end`. `None` when a marker is missing or the
/// block is empty.
pub fn job_block(text: &str) -> Option<std::ops::Range<usize>> {
    let begin_line = marker_line_start(text, JOB_BEGIN)?;
    let start = begin_line + text[begin_line..].find('\n')? + 1;
    let end_line = marker_line_start(text, JOB_END)?;
    let end = end_line.checked_sub(1)?;
    (start < end).then_some(start..end)
}

/// A point strictly inside the job block, where the user types into a running job's target:
/// the start of the block's third line, when the block has one before its last character.
pub fn inside_job_block(text: &str) -> Option<usize> {
    let block = job_block(text)?;
    let first_break = block.start + text[block.clone()].find('\n')?;
    let second_break = first_break + 1 + text[first_break + 1..block.end].find('\n')?;
    let offset = second_break + 1;
    (offset < block.end).then_some(offset)
}

pub fn position(text: &str, offset: usize, encoding: Encoding) -> LinePosition {
    offset_to_position(text, offset, encoding)
}

/// A word nobody else writes, so finding it later proves it survived. Numbers are zero-padded so
/// one word never contains another; every other word carries a multi-byte character.
pub fn word(kind: &str, number: u64) -> String {
    const ENDINGS: [&str; 6] = ["", "é", "ß", "日本", "😀", "Ωμ"];
    format!("{kind}{number:05}{}", ENDINGS[(number % 6) as usize])
}

/// How a scripted job is meant to go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Script {
    /// A streamed rewrite left to finish.
    Done,
    /// Streamed, cancelled with `baton.cancel` part-way.
    Cancel,
    /// HTTP 500 from the model.
    ServerError,
    /// The stream ends cleanly after a few tokens, without its completion events.
    Truncated,
    /// The stream stops sending after a few tokens; the model read timeout ends the job.
    StallTimeout,
    /// The stream stops sending; the user cancels.
    StallCancel,
    /// Streamed; the user types inside the target once the first edit has landed.
    TypeInTarget,
}

impl Script {
    pub const ALL: [Script; 7] = [
        Script::Done,
        Script::Cancel,
        Script::ServerError,
        Script::Truncated,
        Script::StallTimeout,
        Script::StallCancel,
        Script::TypeInTarget,
    ];

    /// A seeded choice, weighted so that about a third of the jobs finish normally.
    pub fn pick(random: &mut Random) -> Script {
        match random.below(100) {
            0..=34 => Script::Done,
            35..=49 => Script::Cancel,
            50..=59 => Script::ServerError,
            60..=69 => Script::Truncated,
            70..=77 => Script::StallTimeout,
            78..=84 => Script::StallCancel,
            _ => Script::TypeInTarget,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Script::Done => "streamed to the end",
            Script::Cancel => "cancelled while streaming",
            Script::ServerError => "HTTP 500",
            Script::Truncated => "stream truncated",
            Script::StallTimeout => "stream stalled, model read timeout",
            Script::StallCancel => "stream stalled, cancelled",
            Script::TypeInTarget => "user typed in the target",
        }
    }

    /// The outcome the script aims at; a race (the stream ending before the cancel) may give
    /// another, which is counted, not an error.
    pub fn expected(self) -> &'static str {
        match self {
            Script::Done => "done",
            Script::Cancel | Script::StallCancel => "cancelled",
            Script::ServerError | Script::Truncated | Script::StallTimeout => "failed",
            Script::TypeInTarget => "stopped",
        }
    }
}

/// A small seeded generator (SplitMix64): the same seed gives the same soak script.
pub struct Random(pub u64);

impl Random {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_has_its_areas_and_a_block_with_an_inside_point() {
        for language in Language::ALL {
            let text = language.initial_text();
            let typing = typing_offset(&text).expect("notes");
            assert!(text[..typing].ends_with("ñandú:"), "{language:?}");
            let block = job_block(&text).expect("block");
            assert_eq!(&text[block.clone()], language.block(0, 3), "{language:?}");
            let inside = inside_job_block(&text).expect("inside point");
            assert!(block.start < inside && inside < block.end);
        }
    }

    #[test]
    fn words_never_contain_each_other() {
        let words: Vec<String> = (0..200).map(|number| word("w", number)).collect();
        for (index, first) in words.iter().enumerate() {
            for second in &words[index + 1..] {
                assert!(!first.contains(second.as_str()) && !second.contains(first.as_str()));
            }
        }
    }
}
