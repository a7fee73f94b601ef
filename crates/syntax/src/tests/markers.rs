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
