#!/bin/sh
# The dashboard's browser test (dashboard.test.mjs: playwright-core driving
# Debian's chromium) as one TAP test of `make check`: installs the pinned
# playwright-core with `npm ci` when it is missing or at another version
# (this needs the npm registry once), then runs the test with node's TAP
# reporter. Everything but the TAP goes to stderr (the test's log); the
# screenshot goes to $SY_BUILDDIR/tests/browser-artifacts/.
srcdir=${SY_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
SY_BUILDDIR=${SY_BUILDDIR:-$srcdir/_build}
case $SY_BUILDDIR in /*) ;; *) SY_BUILDDIR=$(pwd)/$SY_BUILDDIR ;; esac
export SY_BUILDDIR
# Installed beside the build, not in the sources (which may be read-only).
dir=$SY_BUILDDIR/tests/browser-node
chromium=${SY_CHROMIUM:-/usr/bin/chromium}

fail() {
	echo "1..1"
	echo "not ok 1 - $1"
	exit 1
}

command -v node >/dev/null 2>&1 || fail "node is not installed (Debian: nodejs)"
[ -x "$chromium" ] || fail "$chromium is not installed (Debian: chromium)"
mkdir -p "$dir" && cd "$dir" || fail "cannot make $dir"
for f in package.json package-lock.json dashboard.test.mjs; do
	cp -f "$srcdir/tests/browser/$f" . || fail "cannot copy tests/browser/$f"
done

pinned=$(node -p "require('./package.json').dependencies['playwright-core']" 2>/dev/null)
installed=$(node -p "require('./node_modules/playwright-core/package.json').version" 2>/dev/null)
if [ -z "$pinned" ] || [ "$pinned" = undefined ] || [ "$pinned" != "$installed" ]; then
	echo "playwright-core: pinned ${pinned:-none}, installed ${installed:-none}" >&2
	command -v npm >/dev/null 2>&1 || fail "npm is not installed (Debian: npm)"
	echo "npm ci in $dir" >&2
	npm ci --no-audit --no-fund >&2 ||
		fail "npm ci --no-audit --no-fund in $dir failed (it needs the npm registry)"
fi

SY_CHROMIUM=$chromium exec node --test --test-timeout=300000 --test-reporter=tap dashboard.test.mjs
