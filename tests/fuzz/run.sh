#!/bin/sh
# tests/fuzz/run.sh SECONDS: runs each libFuzzer target of a --enable-fuzz
# build for SECONDS (default 10) on a fresh corpus grown from its seeds
# (tests/fuzz/seeds/TARGET and the recorded fixtures), printing TAP: one
# line per target with its executions, "not ok" when it found a crash, a
# leak or a failed check (the reproducer is kept in tests/fuzz/crashes/).
secs=${1:-10}
srcdir=${SY_SRCDIR:-$(dirname "$0")/../..}
fx="$srcdir/tests/fixtures"
targets="${SY_FUZZ_TARGETS:-http1 framing jscan cache config client backend}"
set -- $targets
echo "1..$#"
i=0 total=0 bad=0
mkdir -p tests/fuzz/crashes
for t in $targets; do
	i=$((i + 1))
	corpus=tests/fuzz/corpus/$t
	rm -rf "$corpus"
	mkdir -p "$corpus"
	case $t in
	framing|jscan|client|backend)
		extra="$fx/llama-server $fx/llama-server-c392e50 $fx/anthropic $fx/tgi $fx/openai-responses" ;;
	config) extra="$srcdir/conf $srcdir/conf/examples" ;;
	*) extra="" ;;
	esac
	if [ $t = backend ]; then
		# The adapter in registry order in the first byte's low four
		# bits (openai 0, anthropic 2, tgi 3, ollama 4, kserve 5,
		# openai_responses 6), the request in its high ones (chat 0, a
		# streamed chat 1, completions 2); whole (even) or streamed
		# (odd) second byte.
		k=0
		for s in "\000\000 llama-server/chat.json" \
		    "\020\001 llama-server/chat_stream_usage.sse" \
		    "\020\001 llama-server/error_midstream.sse" \
		    "\040\001 llama-server/completion_stream.sse" \
		    "\002\000 anthropic/tool_use.json" \
		    "\022\001 anthropic/tool_use_stream.sse" \
		    "\022\001 anthropic/error_midstream.sse" \
		    "\003\000 tgi/generate.json" \
		    "\023\001 tgi/generate_stream.sse" \
		    "\006\000 openai-responses/function_call.json" \
		    "\026\001 openai-responses/function_call_stream.sse" \
		    "\026\001 openai-responses/error_failed.sse" \
		    "\023\001 tgi/error_midstream.sse"; do
			k=$((k + 1))
			{ printf "${s%% *}"; cat "$fx/${s#* }"; } >"$corpus/seed-$k"
		done
	fi
	seeds="$srcdir/tests/fuzz/seeds/$t"
	[ -d "$seeds" ] || seeds=""
	log=tests/fuzz/$t.log
	ASAN_OPTIONS=detect_leaks=1 ./tests/fuzz/fuzz_$t -max_total_time="$secs" \
		-timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
		-artifact_prefix=tests/fuzz/crashes/$t- \
		"$corpus" $seeds $extra >"$log" 2>&1
	rc=$?
	n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	n=${n:-0}
	total=$((total + n))
	if [ $rc -eq 0 ] && [ "$n" -gt 0 ]; then
		echo "ok $i - fuzz_$t: $n executions in ${secs} s, no crash"
	else
		bad=$((bad + 1))
		echo "not ok $i - fuzz_$t: exit $rc after $n executions (see $log)"
		grep -m 20 -E 'ERROR|SUMMARY|#0|#1|#2|#3' "$log" | sed 's/^/# /'
	fi
done
echo "# $total executions in all"
[ $bad -eq 0 ]
