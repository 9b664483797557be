#!/usr/bin/env bash
# Builds the book in English and Korean and checks it; `.ci/run` calls this.
#
#   bash docs/build.sh          then open docs/book/en/html/index.html
#                               or docs/book/ko/html/index.html
#
# Checks: every {{#include file:anchor}} names a file and an anchor that exist; every
# heading below a chapter's title has a fixed id ({#id}), so that a link to it works in
# every language; every link inside the book resolves (mdbook-linkcheck2), and every link
# to a heading finds that heading, in the English and in the Korean book; every Korean
# page carries the Korean title, and no emphasis mark shows in its text; po/ko.po
# translates every English message, with none fuzzy or missing (msgfmt, msgcmp).
set -euo pipefail
cd "$(dirname "$0")"

# The tools, installed when missing or of another version (cargo install --locked).
# (mdbook-gettext has no --version, so ask cargo what it installed.)
installed=$(cargo install --list)
need() { # crate version
  if ! grep -qxF "$1 v$2:" <<<"$installed"; then
    echo "installing $1 $2"
    cargo install --locked --quiet "$1@$2"
  fi
}
need mdbook 0.5.4
need mdbook-i18n-helpers 0.4.0
need mdbook-linkcheck2 0.13.0
if ! command -v msgfmt >/dev/null; then
  apt-get update -qq && apt-get install -y -qq gettext >/dev/null
fi

echo "checking includes"
status=0
# Each unescaped {{#include FILE:ANCHOR}} as "CHAPTER FILE ANCHOR" (\{{#include is an
# escaped example in the text, not an include).
while read -r chapter file anchor; do
  path="$(dirname "$chapter")/$file"
  if [ ! -f "$path" ]; then
    echo "  $chapter: $file does not exist" >&2; status=1; continue
  fi
  if [ -n "$anchor" ] && ! { grep -q "ANCHOR: $anchor\$" "$path" && grep -q "ANCHOR_END: $anchor\$" "$path"; }; then
    echo "  $chapter: $file has no anchor '$anchor'" >&2; status=1
  fi
done < <(grep -rHoP '(?<!\\)\{\{#include [^}]*\}\}' src \
           | sed -E 's/^([^:]+):\{\{#include ([^:}]+):?([^}]*)\}\}$/\1 \2 \3/')
[ "$status" -eq 0 ] || exit 1

# A heading's automatic id is made from its text, so a Korean heading gets another one,
# and a link to `page.md#id` loses its way in the Korean book. Every heading below the
# title therefore names its id ({#id}), which mdbook-gettext keeps in every language.
echo "checking that headings have fixed ids"
while IFS= read -r where; do
  echo "  $where: a heading with no {#id}" >&2; status=1
done < <(awk 'FNR == 1 { fence = 0 }
              /^```/ { fence = !fence; next }
              !fence && /^##+ / && !/[{]#[A-Za-z0-9_-]+[}]$/ { print FILENAME ":" FNR ": " $0 }' \
           $(ls src/*.md | grep -v SUMMARY.md))
[ "$status" -eq 0 ] || exit 1

# The Korean book's title. mdbook-gettext translates the chapters, not book.toml, so the
# title is given here to the Korean build (mdBook reads MDBOOK_BOOK__TITLE as book.title).
title_ko="ipc-demos: 리눅스 프로세스 간 통신 실습"

# mdbook logs a failed include or link as ERROR but still exits 0; treat it as failure.
build() { # language folder [title]
  local log
  log=$(env MDBOOK_BOOK__LANGUAGE="$1" ${3:+"MDBOOK_BOOK__TITLE=$3"} mdbook build -d "$2" 2>&1) || { echo "$log" >&2; exit 1; }
  if grep -E '(ERROR|WARN)' <<<"$log" >&2; then
    echo "mdbook reported problems building the $1 book" >&2; exit 1
  fi
}
rm -rf book
echo "building the English book (and checking its links)"
build en book/en
echo "building the Korean book (and checking its links)"
build ko book/ko "$title_ko"

# linkcheck2 checks that linked pages exist, not the #heading inside them; check those,
# in both languages.
echo "checking links to headings"
for language in en ko; do
  while IFS=: read -r chapter link; do
    page=${link%%#*}; fragment=${link#*#}
    html="book/$language/html/${page%.md}.html"
    if ! grep -q "id=\"$fragment\"" "$html" 2>/dev/null; then
      echo "  $chapter ($language): no heading #$fragment in $page" >&2; status=1
    fi
  done < <(grep -rHoP '\]\(\K[a-z0-9-]+\.md#[^)]+' src)
done
[ "$status" -eq 0 ] || exit 1

# mdbook-gettext writes emphasis back as _text_, which CommonMark cannot close inside a
# word: `*데모*가` would show its underscores, and `_데모_ 가` renders with a stray space.
# mdBook's smart quotes turn the closing " of `"요약"의` into an opening one. Look at the
# Korean pages' text (code left out) for all three.
echo "checking emphasis in the Korean book"
perl -CSD -Mutf8 -e '
  my $bad = 0;
  for my $f (@ARGV) {
    open my $h, "<:utf8", $f or next; local $/; my $s = <$h>;
    next unless $s =~ m{<main>(.*)</main>}s; $s = $1;
    $s =~ s{<pre\b.*?</pre>}{}gs; $s =~ s{<code\b.*?</code>}{}gs;
    (my $t = $s) =~ s{<[^>]+>}{}g;
    while ($t =~ m{(.{0,15}(?:\p{Hangul}[_*]|[_*]\p{Hangul}).{0,15})}g) {
      print STDERR "  $f: an emphasis mark shows: $1\n"; $bad++ }
    while ($s =~ m{(.{0,20}</em> (?:은|는|이|가|을|를|의|에|와|과|로|으로|도|만|에서|라는|이라는|입니다|합니다|한|할)(?=[\s.,)]))}g) {
      print STDERR "  $f: a space between a word and its particle: $1\n"; $bad++ }
    while ($t =~ m{(“[^”“]{1,60}“\p{Hangul})}g) {
      print STDERR "  $f: a straight quote before a particle became an opening quote: $1\n"; $bad++ }
  }
  exit($bad ? 1 : 0);' book/ko/html/*.html

echo "checking the Korean title"
english_title=$(sed -nE 's/^title = "(.*)"$/\1/p' book.toml)
if grep -lF "$english_title" book/ko/html/*.html >&2; then
  echo "  the pages above carry the English title, not \"$title_ko\"" >&2; exit 1
fi

echo "checking the Korean translation"
[ -f po/ko.po ] || { echo "po/ko.po is missing" >&2; exit 1; }
stats=$(msgfmt --statistics -o /dev/null po/ko.po 2>&1)
echo "  ko.po: $stats"
case "$stats" in *untranslated*|*fuzzy*) echo "ko.po is incomplete" >&2; exit 1 ;; esac
# Every message of the English source must be in ko.po: extract them afresh and compare.
MDBOOK_OUTPUT='{"xgettext": {}}' mdbook build -d book/pot >/dev/null
msgcmp po/ko.po book/pot/messages.pot
echo "the book is built: docs/book/en/html/index.html, docs/book/ko/html/index.html"
