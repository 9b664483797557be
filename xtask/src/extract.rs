//! Finds the sentences of `tr!` and `say!` in the sources, by parsing them as Rust.
//!
//! A file is parsed with `syn`; every macro call is visited, including those inside the
//! arguments of other macros (`format!`, `write!`, `vec!`...), whose arguments `syn`
//! leaves as tokens, so they are parsed here as a list of expressions. A `tr!` call is
//! `tr!("template", name = expr, name, ...)`; a `say!` call has the narrator first.
//! Each call is also checked as the runtime needs it: its template must be valid (see
//! [`common::i18n::pieces`]) and name exactly the arguments it is given.

use std::path::Path;

use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::visit::Visit;
use syn::{Expr, Ident, LitStr, Token};

/// One sentence found in the sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The English template: the msgid in `po/ko.po`.
    pub msgid: String,
    /// `pipe-demo/src/lib.rs:42`: where it was found, relative to the workspace.
    pub place: String,
    /// What is wrong with the call itself, if anything (a bad template).
    pub problem: Option<String>,
}

/// The sentences of every `tr!`/`say!` in `text`, the source of the file `place`
/// (a path relative to the workspace). An error if the file is not valid Rust.
pub fn file(place: &str, text: &str) -> Result<Vec<Found>, String> {
    let syntax = syn::parse_file(text).map_err(|e| {
        let at = e.span().start();
        format!("{place}:{}:{}: {e}", at.line, at.column + 1)
    })?;
    let mut visitor = Visitor {
        place,
        found: Vec::new(),
    };
    visitor.visit_file(&syntax);
    Ok(visitor.found)
}

/// The sentences of every `src/**/*.rs` of every crate in `members` under `root`.
pub fn sources(root: &Path, members: &[String]) -> Result<Vec<Found>, String> {
    let mut found = Vec::new();
    for member in members {
        let mut files = Vec::new();
        rust_files(&root.join(member).join("src"), &mut files)?;
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("read {}: {e}", path.display()))?;
            let place = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            found.extend(file(&place, &text)?);
        }
    }
    Ok(found)
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<(), String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("read {}: {e}", dir.display())),
    };
    for entry in entries {
        let entry = entry.map_err(|e| format!("read {}: {e}", dir.display()))?;
        let kind = entry
            .file_type()
            .map_err(|e| format!("stat {}: {e}", entry.path().display()))?;
        let path = entry.path();
        if kind.is_dir() {
            rust_files(&path, out)?;
        } else if kind.is_file() && path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

struct Visitor<'a> {
    place: &'a str,
    found: Vec<Found>,
}

/// The parts of a `tr!` or `say!` call.
struct Call {
    narrator: Option<Expr>,
    template: LitStr,
    /// Each argument's name, and its value unless it is the short form `name`.
    args: Vec<(Ident, Option<Expr>)>,
}

fn parse_call(input: ParseStream<'_>, with_narrator: bool) -> syn::Result<Call> {
    let narrator = if with_narrator {
        let narrator: Expr = input.parse()?;
        input.parse::<Token![,]>()?;
        Some(narrator)
    } else {
        None
    };
    let template: LitStr = input.parse()?;
    let mut args = Vec::new();
    while !input.is_empty() {
        input.parse::<Token![,]>()?;
        if input.is_empty() {
            break;
        }
        let name: Ident = input.parse()?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse::<Expr>()?)
        } else {
            None
        };
        args.push((name, value));
    }
    Ok(Call {
        narrator,
        template,
        args,
    })
}

impl Visitor<'_> {
    fn call(&mut self, mac: &syn::Macro, with_narrator: bool) {
        let line = mac
            .path
            .segments
            .last()
            .map_or(0, |s| s.ident.span().start().line);
        let parsed = Parser::parse2(
            |input: ParseStream<'_>| parse_call(input, with_narrator),
            mac.tokens.clone(),
        );
        let call = match parsed {
            Ok(call) => call,
            Err(e) => {
                self.found.push(Found {
                    msgid: String::new(),
                    place: format!("{}:{line}", self.place),
                    problem: Some(format!(
                        "this call is not `tr!(\"literal\", name = value, ...)`: {e}"
                    )),
                });
                return;
            }
        };
        let msgid = call.template.value();
        let place = format!("{}:{}", self.place, call.template.span().start().line);
        let problem = match common::i18n::placeholders(&msgid) {
            Err(why) => Some(why),
            Ok(names) => {
                let mut given: Vec<String> =
                    call.args.iter().map(|(name, _)| name.to_string()).collect();
                given.sort_unstable();
                let wanted: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
                (given != wanted).then(|| {
                    format!("the placeholders {wanted:?} are not the arguments given, {given:?}")
                })
            }
        };
        self.found.push(Found {
            msgid,
            place,
            problem,
        });
        // A sentence can be an argument of another (or of the narrator expression).
        if let Some(narrator) = &call.narrator {
            self.visit_expr(narrator);
        }
        for (_, value) in &call.args {
            if let Some(value) = value {
                self.visit_expr(value);
            }
        }
    }
}

/// Whether `attrs` mark test code (`#[test]`, `#[cfg(test)]`), whose sentences are not
/// the programs' and are not extracted.
fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("test")
            || (attr.path().is_ident("cfg")
                && matches!(&attr.meta, syn::Meta::List(list) if list.tokens.to_string() == "test"))
    })
}

impl<'ast> Visit<'ast> for Visitor<'_> {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if !is_test(&item.attrs) {
            syn::visit::visit_item_mod(self, item);
        }
    }

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        if !is_test(&item.attrs) {
            syn::visit::visit_item_fn(self, item);
        }
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        match mac
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .as_deref()
        {
            Some("tr") => self.call(mac, false),
            Some("say") => self.call(mac, true),
            _ => {
                // format!, write!, vec!, assert!...: arguments that are expressions.
                let exprs =
                    Punctuated::<Expr, Token![,]>::parse_terminated.parse2(mac.tokens.clone());
                if let Ok(exprs) = exprs {
                    for expr in &exprs {
                        self.visit_expr(expr);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = r#"
fn lesson(n: &Narrator, fd: i32) {
    common::say!(n, "fd {fd} reads", fd);
    n.say(format!("{} and more", common::tr!("one {x}", x = tr!("nested"))));
    let plain = "not a message";
    println!("{}", tr!(r"raw \n stays"));
    tr!("two\
         lines");
}
macro_rules! inside_a_definition { () => { tr!("never extracted") }; }
#[test]
fn a_test() { tr!("test sentence"); }
#[cfg(test)]
mod tests { fn helper() { tr!("test sentence"); } }
"#;

    #[test]
    fn finds_calls_in_statements_in_other_macros_and_nested() {
        let found = file("demo/src/lib.rs", SOURCE).unwrap();
        let msgids: Vec<&str> = found.iter().map(|f| f.msgid.as_str()).collect();
        assert_eq!(
            msgids,
            [
                "fd {fd} reads",
                "one {x}",
                "nested",
                r"raw \n stays",
                "twolines"
            ]
        );
        assert_eq!(found[0].place, "demo/src/lib.rs:3");
        assert!(found.iter().all(|f| f.problem.is_none()), "{found:?}");
    }

    #[test]
    fn a_bad_template_or_an_argument_mismatch_is_a_problem() {
        let found = file(
            "x.rs",
            r#"fn f() { tr!("{x:?}", x); tr!("{a}", b = 1); tr!("{MAX}"); say!(n); }"#,
        )
        .unwrap();
        assert_eq!(found.len(), 4);
        assert!(found.iter().all(|f| f.problem.is_some()), "{found:?}");
    }

    #[test]
    fn a_file_that_is_not_rust_is_an_error_with_its_place() {
        let e = file("bad.rs", "fn (").unwrap_err();
        assert!(e.starts_with("bad.rs:1:"), "{e}");
    }
}
