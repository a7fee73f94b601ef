//! Incremental reparsing gives the same tree as parsing from scratch, after edits made the way
//! the server makes them (through `text::Document`).

use text::{ContentChange, Document, PositionEncoding};

use crate::{Language, SyntaxTree};

/// A tiny deterministic generator, so failures reproduce without a seed file.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % bound.max(1)
    }
}

fn sample(language: Language) -> &'static str {
    match language {
        Language::Rust => {
            "struct P { x: i32 }\nimpl P {\n    fn get(&self) -> i32 { self.x }\n}\nfn main() { P { x: 1 }.get(); }\n"
        }
        Language::Python => {
            "class P:\n    def get(self):\n        return self.x\n\ndef main():\n    P().get()\n"
        }
        Language::TypeScript | Language::Tsx => {
            "interface I { x: number }\nclass P implements I {\n  x = 1;\n  get(): number { return this.x; }\n}\nnew P().get();\n"
        }
        Language::JavaScript => {
            "class P {\n  get() { return this.x; }\n}\nfunction main() { new P().get(); }\n"
        }
        Language::Go => {
            "package p\n\ntype P struct{ X int }\n\nfunc (p P) Get() int { return p.X }\n\nfunc main() { P{}.Get() }\n"
        }
        Language::C => {
            "struct p { int x; };\nint get(struct p *v) { return v->x; }\nint main(void) { return get(0); }\n"
        }
        Language::Cpp => {
            "namespace n {\nclass P {\n  int x;\npublic:\n  int get() { return x; }\n};\n}\nint main() { return n::P().get(); }\n"
        }
        Language::Java => {
            "class P {\n  int x;\n  int get() { return x; }\n  public static void main(String[] a) { new P().get(); }\n}\n"
        }
        Language::Ruby => "class P\n  def get\n    @x\n  end\nend\nP.new.get\n",
        Language::Lua => {
            "local P = {}\nfunction P.get(self)\n  return self.x\nend\nprint(P.get({x = 1}))\n"
        }
        Language::Bash => "get() {\n  echo \"$1\"\n}\nx=1\nget \"$x\"\n",
    }
}

/// Snippets inserted by the random edits: balanced and unbalanced code, multi-byte text,
/// line breaks, so the tree goes through error states and back.
const INSERTIONS: &[&str] = &[
    "", "x", "(", "}", "{ }", "\n", "é", "fn ", "def ", "\"", "// c\n", "  ", "🦀", "1 + 2",
];

#[test]
fn incremental_update_matches_a_fresh_parse_after_random_edits() {
    let mut random = Lcg(7);
    for language in Language::ALL {
        // Three copies, so that edits land among several top-level items and the carried-over
        // outline has neighbours to keep.
        let mut document = Document::new(&sample(language).repeat(3), 0, language.name());
        let mut tree = SyntaxTree::parse(language, document.rope()).expect("parses");
        // Computing the outline once makes every update carry it over incrementally.
        tree.outline(document.rope());
        for round in 1..=120 {
            // One to three changes per version, each against the text after the previous one,
            // as editors send them.
            let mut changes = Vec::new();
            let mut shadow = document.clone();
            for _ in 0..=random.next(3) {
                let length = shadow.len_bytes();
                let start = shadow.floor_boundary(random.next(length + 1));
                let end = shadow.floor_boundary((start + random.next(6)).min(length));
                let change = ContentChange {
                    range: Some(shadow.range(start..end, PositionEncoding::Utf8)),
                    text: INSERTIONS[random.next(INSERTIONS.len())].to_string(),
                };
                shadow
                    .apply_changes(
                        shadow.version() + 1,
                        std::slice::from_ref(&change),
                        PositionEncoding::Utf8,
                    )
                    .expect("newer version");
                changes.push(change);
            }
            let applied = document
                .apply_changes(round, &changes, PositionEncoding::Utf8)
                .expect("newer version");
            tree.update(document.rope(), &applied);
            let fresh = SyntaxTree::parse(language, document.rope()).expect("parses");
            assert_eq!(
                tree.tree().root_node().to_sexp(),
                fresh.tree().root_node().to_sexp(),
                "{} after round {round}:\n{}",
                language.name(),
                document.text()
            );
            assert_eq!(tree.tags(document.rope()), fresh.tags(document.rope()));
            assert_eq!(
                tree.outline(document.rope()),
                fresh.outline(document.rope()),
                "{} outline after round {round}:\n{}",
                language.name(),
                document.text()
            );
        }
    }
}

#[test]
fn whole_document_replacement_updates_too() {
    let mut document = Document::new("fn a() {}\n", 0, "rust");
    let mut tree = SyntaxTree::parse(Language::Rust, document.rope()).expect("parses");
    let change = ContentChange {
        range: None,
        text: "struct B;\nfn c() {}\n".to_string(),
    };
    let applied = document
        .apply_changes(1, &[change], PositionEncoding::Utf8)
        .expect("newer");
    tree.update(document.rope(), &applied);
    let names: Vec<String> = tree
        .tags(document.rope())
        .into_iter()
        .map(|tag| tag.name)
        .collect();
    assert_eq!(names, ["B", "c"]);
}
