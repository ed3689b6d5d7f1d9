#!/usr/bin/env bash
# Checks the built book in a real browser (headless Chromium, from Debian's
# `chromium` package, installed when missing and run as root): every page
# of SUMMARY.md loads with a title and content, no `{{#include}}` is left
# unexpanded, every link and picture inside the book resolves, and the
# hidden `# ` lines of the examples are really hidden (their computed style,
# after mdBook's own script and CSS ran). Not part of the test suite: run it
# after changing the book (`scripts/book-check.sh`).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
  [ "$(id -u)" = 0 ] || die "a headless Chromium is needed: sudo apt-get install chromium (Debian), brew install --cask chromium (macOS)"
  log "installing Chromium (Debian package chromium)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  browser=$(command -v chromium)
fi

"$ROOT/scripts/book.sh"
port=$(free_port)
python3 -m http.server --bind 127.0.0.1 "$port" --directory book/build >/dev/null 2>&1 &
server=$!
profile=$(mktemp -d)
trap 'stop_pid "$server" "the book server" 2>/dev/null; rm -rf "$profile" book/build/.check.html' EXIT
wait_http "http://127.0.0.1:$port/" 10 || die "the book server did not start"

# A page that loads one chapter in a frame, waits for its scripts, then
# writes what it found into its own DOM for --dump-dom to print.
cat > book/build/.check.html <<'HTML'
<!doctype html><meta charset="utf-8"><pre id="result">pending</pre>
<iframe id="f" style="width:1200px;height:900px"></iframe>
<script>
const page = new URLSearchParams(location.search).get("page");
const f = document.getElementById("f");
f.onload = () => setTimeout(() => {
  const d = f.contentDocument;
  const main = d.querySelector("main");
  const boring = [...d.querySelectorAll("code .boring")];
  const shown = boring.filter(e => f.contentWindow.getComputedStyle(e).display !== "none");
  const code = [...d.querySelectorAll("pre code")].map(c => c.innerText).join("\n");
  document.getElementById("result").textContent = JSON.stringify({
    title: d.title,
    text: main ? main.innerText.length : 0,
    unexpanded: (main ? main.innerText : "").includes("{{#"),
    links: [...d.querySelectorAll("main a[href]")].map(a => a.getAttribute("href")),
    images: [...d.querySelectorAll("main img")].map(i => ({src: i.getAttribute("src"), ok: i.complete && i.naturalWidth > 0})),
    hidden: boring.length,
    hiddenShown: shown.length,
    recordVisible: code.includes("tutorial::record"),
  });
}, 500);
f.src = page;
</script>
HTML

python3 - "$browser" "$port" "$profile" <<'PY'
import json, re, subprocess, sys
from pathlib import Path
from html import unescape

browser, port, profile = sys.argv[1:4]
build = Path("book/build")
pages = ["index.html"] + [m.replace(".md", ".html") for m in
         re.findall(r"\]\(([^)]+\.md)\)", Path("book/src/SUMMARY.md").read_text())]
problems, hidden_total = [], 0
def load(page):
    """The check page's result for `page`, or None if it did not finish."""
    out = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=8000",
         "--dump-dom", f"http://127.0.0.1:{port}/.check.html?page={page}"],
        capture_output=True, text=True, timeout=120).stdout
    m = re.search(r'<pre id="result">(.*?)</pre>', out, re.S)
    return m if m and m.group(1) != "pending" else None

for page in pages:
    # A busy machine can starve a headless load once (seen in CI while two
    # builds ran); a page that does not load twice is broken.
    m = load(page) or load(page)
    if not m:
        problems.append(f"{page}: did not load"); continue
    r = json.loads(unescape(m.group(1)))
    if not r["title"] or r["text"] < 200:
        problems.append(f"{page}: empty page ({r['text']} characters)")
    if r["unexpanded"]:
        problems.append(f"{page}: an {{{{#include}}}} was not expanded")
    for href in r["links"]:
        if re.match(r"[a-z]+:", href) or href.startswith("#"):
            continue
        target = (build / Path(page).parent / href.split("#")[0]).resolve()
        if not target.exists():
            problems.append(f"{page}: broken link {href}")
    for img in r["images"]:
        if not img["ok"]:
            problems.append(f"{page}: picture {img['src']} did not load")
    if r["hiddenShown"] or r["recordVisible"]:
        problems.append(f"{page}: {r['hiddenShown']} hidden lines are shown")
    hidden_total += r["hidden"]
    print(f"ok  {page}: {r['title']!r}, {len(r['links'])} links, {r['hidden']} hidden lines hidden")
if problems:
    sys.exit("the book check failed:\n" + "\n".join(problems))
print(f"all {len(pages)} pages loaded in Chromium; {hidden_total} hidden lines, none shown")
PY
