#!/bin/sh
# The OpenAI SDK tests (openai.test.mjs) as one TAP test of `make check`:
# installs the pinned SDK with `npm ci` when it is missing (this needs the npm
# registry once), then runs the tests with node's TAP reporter. Everything
# but the TAP goes to stderr (the test's log).
srcdir=${SY_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
SY_BUILDDIR=${SY_BUILDDIR:-$srcdir/_build}
case $SY_BUILDDIR in /*) ;; *) SY_BUILDDIR=$(pwd)/$SY_BUILDDIR ;; esac
export SY_BUILDDIR
# The SDK is installed beside the build, not in the sources (which may be
# read-only, as under `make distcheck`).
sdk=$SY_BUILDDIR/tests/sdk-node

fail() {
	echo "1..1"
	echo "not ok 1 - $1"
	exit 1
}

command -v node >/dev/null 2>&1 || fail "node is not installed (Debian: nodejs)"
mkdir -p "$sdk" && cd "$sdk" || fail "cannot make $sdk"
for f in package.json package-lock.json openai.test.mjs; do
	cp -f "$srcdir/tests/sdk/$f" . || fail "cannot copy tests/sdk/$f"
done

# npm ci when node_modules lacks the SDK version that package.json pins.
pinned=$(node -p 'require("./package.json").dependencies.openai' 2>/dev/null)
installed=$(node -p 'require("./node_modules/openai/package.json").version' 2>/dev/null)
if [ -z "$pinned" ] || [ "$pinned" != "$installed" ]; then
	command -v npm >/dev/null 2>&1 || fail "npm is not installed (Debian: npm)"
	echo "npm ci in $sdk (openai $pinned; installed: ${installed:-none})" >&2
	npm ci --no-audit --no-fund >&2 ||
		fail "npm ci --no-audit --no-fund in $sdk failed (it needs the npm registry)"
fi

exec node --test --test-reporter=tap openai.test.mjs
