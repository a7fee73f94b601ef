//! `baton:` markers in every comment syntax, and stripping comment syntax from comments.

use expect_test::expect;
use ropey::Rope;

use crate::{comment_text, find_marker};

/// Renders the marker (if any) on each line of `text`.
fn check_markers(text: &str, expect: expect_test::Expect) {
    let rope = Rope::from_str(text);
    let mut rendered = String::new();
    for line in 0..rope.len_lines() {
        let line_text = rope.line(line).to_string();
        let marker = find_marker(&rope, line);
        if let Some(marker) = &marker {
            assert_eq!(marker.line, line);
            assert_eq!(text[marker.line_range.clone()], line_text);
        }
        if line_text.is_empty() {
            continue;
        }
        let result = marker.map_or("-".to_string(), |marker| {
            format!("{:?}", marker.instruction)
        });
        rendered += &format!(
            "{:<36} => {result}\n",
            format!("{:?}", line_text.trim_end())
        );
    }
    expect.assert_eq(&rendered);
}

#[test]
fn markers_in_every_comment_syntax() {
    check_markers(
        "// baton: make it async\n\
         \t/// BATON: document this\n\
         //! Baton:crate docs\n\
         # baton: add retries\n\
         ## baton: shell twice\n\
         -- baton: lua or sql\n\
         ; baton: lisp\n\
         ;; baton: lisp twice\n\
         % baton: latex\n\
         /* baton: block */\n\
         /** baton: javadoc style */\n\
         <!-- baton: html -->\n\
         (* baton: ocaml *)\n\
         // baton:\n\
         // baton:    \n\
         let x = 1; // baton: trailing comments are not markers\n\
         // not baton: in the middle\n\
         baton: without a comment\n\
         \"// baton: inside a string\"\n\
         // baton: windows line end\r\n\
         # baton: last line without newline",
        expect![[r###"
            "// baton: make it async"            => "make it async"
            "\t/// BATON: document this"         => "document this"
            "//! Baton:crate docs"               => "crate docs"
            "# baton: add retries"               => "add retries"
            "## baton: shell twice"              => "shell twice"
            "-- baton: lua or sql"               => "lua or sql"
            "; baton: lisp"                      => "lisp"
            ";; baton: lisp twice"               => "lisp twice"
            "% baton: latex"                     => "latex"
            "/* baton: block */"                 => "block"
            "/** baton: javadoc style */"        => "javadoc style"
            "<!-- baton: html -->"               => "html"
            "(* baton: ocaml *)"                 => "ocaml"
            "// baton:"                          => -
            "// baton:"                          => -
            "let x = 1; // baton: trailing comments are not markers" => -
            "// not baton: in the middle"        => -
            "baton: without a comment"           => -
            "\"// baton: inside a string\""      => -
            "// baton: windows line end"         => "windows line end"
            "# baton: last line without newline" => "last line without newline"
        "###]],
    );
}

#[test]
fn marker_line_out_of_range() {
    let rope = Rope::from_str("// baton: x\n");
    assert_eq!(find_marker(&rope, 1), None);
    assert_eq!(find_marker(&rope, 7), None);
    assert_eq!(
        find_marker(&rope, 0).map(|marker| marker.line_range),
        Some(0..12)
    );
}

fn check_comment_text(comments: &[&str], expect: expect_test::Expect) {
    let rendered: Vec<String> = comments
        .iter()
        .map(|comment| format!("{comment:?}\n  => {:?}", comment_text(comment)))
        .collect();
    expect.assert_eq(&(rendered.join("\n") + "\n"));
}

#[test]
fn comment_text_strips_comment_syntax() {
    check_comment_text(
        &[
            "// make it async",
            "//make it async",
            "/// Returns the sum.\n/// Panics never.",
            "//! Crate docs.",
            "//   keeps extra indentation",
            "# retry three times",
            "## heading",
            "-- lua comment\n-- second line",
            "--- doc comment",
            "; lisp",
            ";; lisp twice",
            "/* block */",
            "/*\n * Javadoc style\n * second line\n */",
            "/** Doc\n  * with stars\n  */",
            "/*! inner doc */",
            "<!-- html comment -->",
            "(* ocaml *)",
            "--[[ lua\nblock ]]",
            "--[==[ lua level two ]==]",
            "=begin\nruby block\n=end",
            "//",
            "",
            "   // indented\n   // run",
        ],
        expect![[r###"
            "// make it async"
              => "make it async"
            "//make it async"
              => "make it async"
            "/// Returns the sum.\n/// Panics never."
              => "Returns the sum.\nPanics never."
            "//! Crate docs."
              => "Crate docs."
            "//   keeps extra indentation"
              => "  keeps extra indentation"
            "# retry three times"
              => "retry three times"
            "## heading"
              => "heading"
            "-- lua comment\n-- second line"
              => "lua comment\nsecond line"
            "--- doc comment"
              => "doc comment"
            "; lisp"
              => "lisp"
            ";; lisp twice"
              => "lisp twice"
            "/* block */"
              => "block"
            "/*\n * Javadoc style\n * second line\n */"
              => "Javadoc style\nsecond line"
            "/** Doc\n  * with stars\n  */"
              => "Doc\nwith stars"
            "/*! inner doc */"
              => "inner doc"
            "<!-- html comment -->"
              => "html comment"
            "(* ocaml *)"
              => "ocaml"
            "--[[ lua\nblock ]]"
              => "lua\nblock"
            "--[==[ lua level two ]==]"
              => "lua level two"
            "=begin\nruby block\n=end"
              => "ruby block"
            "//"
              => ""
            ""
              => ""
            "   // indented\n   // run"
              => "indented\nrun"
        "###]],
    );
}

/// Issue 12: a line whose text puts a multi-byte character where the `baton:` keyword would
/// end (`Ñandú`, `TODO🎉`) made the keyword check slice inside the character and panic.
#[test]
fn markers_among_multi_byte_text() {
    check_markers(
        "    // Ñandú es un ave\n\
         // TODO🎉 later\n\
         // baton: ñandú — añade un campo\n\
         //baton:ñandú\n\
         // ñandú baton: not at the start\n\
         // batoñ: almost\n\
         // bato🎉 almost\n\
         // 🎉baton: after an emoji\n\
         /* baton: añade 🎉 */\n\
         # BATON: ünïcödé\r\n\
         -- baton: cafe\u{301} 👨\u{200D}👩\u{200D}👧\n\
         <!-- baton: 中文 -->\n\
         // baton: 🎉",
        expect![[r##"
            "    // Ñandú es un ave"             => -
            "// TODO🎉 later"                     => -
            "// baton: ñandú — añade un campo"   => "ñandú — añade un campo"
            "//baton:ñandú"                      => "ñandú"
            "// ñandú baton: not at the start"   => -
            "// batoñ: almost"                   => -
            "// bato🎉 almost"                    => -
            "// 🎉baton: after an emoji"          => -
            "/* baton: añade 🎉 */"               => "añade 🎉"
            "# BATON: ünïcödé"                   => "ünïcödé"
            "-- baton: cafe\u{301} 👨\u{200d}👩\u{200d}👧" => "cafe\u{301} 👨\u{200d}👩\u{200d}👧"
            "<!-- baton: 中文 -->"                 => "中文"
            "// baton: 🎉"                        => "🎉"
        "##]],
    );
}

/// Characters of every UTF-8 length, a combining mark, a zero-width joiner and a line break.
const INSERTED: &[&str] = &["Ñ", "—", "🎉", "e\u{301}", "\u{200D}", "中", "\r\n"];

/// Lines that are markers, in several comment syntaxes, and lines that almost are.
const MARKER_LINES: &[&str] = &[
    "// baton: add a field",
    "    /// BATON: document it */",
    "/* baton: block */",
    "<!-- baton: html -->",
    "(* baton: ocaml *)",
    "# baton: retry",
    "// TODO later",
    "--[[ baton: lua ]]",
];

/// Every way of putting a multi-byte character into a marker line, at every character
/// position: inside the opener, between opener and keyword, inside the keyword, inside the
/// instruction and inside the closer. None may panic; one inside the instruction keeps the
/// marker and its text; one inside the keyword (which must be ASCII) breaks it.
#[test]
fn multi_byte_text_at_every_position_of_a_marker_line() {
    for line in MARKER_LINES {
        let original = find_marker(&Rope::from_str(line), 0);
        let keyword_start = line.to_ascii_lowercase().find("baton:");
        let mut boundaries: Vec<usize> = line.char_indices().map(|(at, _)| at).collect();
        boundaries.push(line.len());
        for &at in &boundaries {
            for inserted in INSERTED {
                let text = format!("{}{inserted}{}", &line[..at], &line[at..]);
                let rope = Rope::from_str(&text);
                let markers: Vec<_> = (0..rope.len_lines() + 1)
                    .map(|line| find_marker(&rope, line))
                    .collect();
                let (Some(original), Some(keyword_start)) = (&original, keyword_start) else {
                    // Not a marker (no keyword, or not right after the opener): inserting a
                    // character cannot make it one.
                    assert!(markers.iter().all(Option::is_none), "{text:?}");
                    continue;
                };
                let inside_keyword = at > keyword_start && at < keyword_start + "baton:".len();
                let instruction_start = keyword_start + "baton: ".len();
                if inside_keyword {
                    assert!(markers.iter().all(Option::is_none), "{text:?}");
                } else if at > instruction_start
                    && original.instruction.contains(&line[instruction_start..at])
                    && *inserted != "\r\n"
                    && at < instruction_start + original.instruction.len()
                {
                    let marker = markers[0].as_ref().expect("still a marker");
                    assert!(
                        marker.instruction.contains(inserted),
                        "{text:?} gave {marker:?}"
                    );
                    assert_eq!(marker.line_range, 0..text.len(), "{text:?}");
                }
            }
        }
    }
}

/// Every prefix of multi-byte comment lines, cut at every byte, through `find_marker` (which
/// sees the whole line) and `comment_text` (which sees a comment cut wherever the tree says).
#[test]
fn multi_byte_comments_cut_at_every_byte() {
    let comments = [
        "    // Ñandú es un ave\r\n",
        "// TODO🎉 later",
        "// baton: ñandú — añade un campo",
        "/** ünï\n * cödé 🎉\n */",
        "--[==[ 中文 e\u{301} ]==]",
        "<!-- 👨\u{200D}👩 -->",
        "=begin\nÑ\n=end",
    ];
    for comment in comments {
        for cut in 0..=comment.len() {
            let Some(prefix) = comment.get(..cut) else {
                continue;
            };
            let rope = Rope::from_str(prefix);
            for line in 0..=rope.len_lines() {
                let _ = find_marker(&rope, line);
            }
            let stripped = comment_text(prefix);
            assert!(
                stripped.chars().all(|c| comment.contains(c)),
                "{prefix:?} gave {stripped:?}"
            );
        }
    }
    check_comment_text(
        &[
            "    // Ñandú es un ave",
            "// TODO🎉 later",
            "/** ünï\n * cödé 🎉\n */",
            "--[==[ 中文 e\u{301} ]==]",
        ],
        expect![[r#"
            "    // Ñandú es un ave"
              => "Ñandú es un ave"
            "// TODO🎉 later"
              => "TODO🎉 later"
            "/** ünï\n * cödé 🎉\n */"
              => "ünï\ncödé 🎉"
            "--[==[ 中文 e\u{301} ]==]"
              => "中文 e\u{301}"
        "#]],
    );
}

/// `baton plan:` markers ask for a plan: found by `find_plan_marker` in every comment syntax,
/// never by `find_marker` (and the other way round).
#[test]
fn plan_markers_are_their_own_kind() {
    let text = "// baton plan: split the parser\n# BATON PLAN: add retries -->\n/* baton plan: */\n// baton: edit this\n<!-- baton plan: docs site -->\n";
    let rope = Rope::from_str(text);
    let plans: Vec<Option<String>> = (0..5)
        .map(|line| crate::find_plan_marker(&rope, line).map(|marker| marker.instruction))
        .collect();
    assert_eq!(
        plans,
        vec![
            Some("split the parser".to_string()),
            Some("add retries".to_string()),
            None,
            None,
            Some("docs site".to_string()),
        ]
    );
    let edits: Vec<Option<String>> = (0..5)
        .map(|line| find_marker(&rope, line).map(|marker| marker.instruction))
        .collect();
    assert_eq!(
        edits,
        vec![None, None, None, Some("edit this".to_string()), None]
    );
}
