#!/bin/sh
# The SDK tests (every *.test.mjs here: the OpenAI and Anthropic SDKs, the
# Vercel AI SDK and LangChain JS, on fleet.mjs's fleet and backend.mjs's
# scripted backend) as one TAP test of `make check`: installs the packages
# package-lock.json pins with `npm ci` when one is missing or at another
# version (this needs the npm registry once), then runs the tests with node's
# TAP reporter. Everything but the TAP goes to stderr (the test's log).
srcdir=${SY_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
SY_BUILDDIR=${SY_BUILDDIR:-$srcdir/_build}
case $SY_BUILDDIR in /*) ;; *) SY_BUILDDIR=$(pwd)/$SY_BUILDDIR ;; esac
export SY_BUILDDIR
# The SDKs are installed beside the build, not in the sources (which may be
# read-only, as under `make distcheck`).
sdk=$SY_BUILDDIR/tests/sdk-node

fail() {
	echo "1..1"
	echo "not ok 1 - $1"
	exit 1
}

command -v node >/dev/null 2>&1 || fail "node is not installed (Debian: nodejs)"
# The pinned packages' engines (@langchain/core, @langchain/openai) need 20.
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] 2>/dev/null ||
	fail "node $(node --version) is too old: the SDKs package-lock.json pins need Node.js 20 or newer"
mkdir -p "$sdk" && cd "$sdk" || fail "cannot make $sdk"
rm -f ./*.mjs
for f in package.json package-lock.json "$srcdir"/tests/sdk/*.mjs; do
	f=$(basename "$f")
	cp -f "$srcdir/tests/sdk/$f" . || fail "cannot copy tests/sdk/$f"
done

# npm ci when node_modules lacks a package at the version package.json pins.
need_ci=
for pkg in $(node -p "Object.keys(require('./package.json').dependencies).join(' ')"); do
	pinned=$(node -p "require('./package.json').dependencies['$pkg']" 2>/dev/null)
	installed=$(node -p "require('./node_modules/$pkg/package.json').version" 2>/dev/null)
	if [ -z "$pinned" ] || [ "$pinned" = undefined ] || [ "$pinned" != "$installed" ]; then
		echo "$pkg: pinned ${pinned:-none}, installed ${installed:-none}" >&2
		need_ci=yes
	fi
done
if [ -n "$need_ci" ]; then
	command -v npm >/dev/null 2>&1 || fail "npm is not installed (Debian: npm)"
	echo "npm ci in $sdk" >&2
	npm ci --engine-strict --no-audit --no-fund >&2 ||
		fail "npm ci --engine-strict --no-audit --no-fund in $sdk failed (it needs the npm registry)"
fi

exec node --test --test-reporter=tap ./*.test.mjs
