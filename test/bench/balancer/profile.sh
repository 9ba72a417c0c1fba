#!/bin/sh
# Profiles the HTTP/1.1 listener at saturation: three bench backends, profile-http.ts (the listener
# in one process, no worker thread) under node --cpu-prof --trace-gc, wrk -t1 -c16 (3 s warm-up,
# then 15 s), then the self-time table (profile-summary.ts, per request over the requests served)
# and the GC pauses. Run it under the heavy-run lock, from the checkout to profile:
#   flock /tmp/raftmesh-heavy.lock sh test/bench/balancer/profile.sh <out dir>
set -e
dir=$1
rm -rf "$dir"
mkdir -p "$dir"
uptime
node --import tsx test/bench/balancer/backends.ts 18401 18402 18403 > /dev/null &
bp=$!
sleep 2
node --trace-gc --cpu-prof --cpu-prof-dir "$dir" --import tsx test/bench/balancer/profile-http.ts 22 18410 18411 18401 18402 18403 > "$dir/gc.log" &
hp=$!
sleep 3
wrk -t1 -c16 -d3s http://127.0.0.1:18410/svc/hello/ > "$dir/warm.txt"
wrk -t1 -c16 -d15s --latency http://127.0.0.1:18410/svc/hello/ | tee "$dir/run.txt"
wait $hp || true
kill $bp
uptime
n=$(cat "$dir/warm.txt" "$dir/run.txt" | grep -oE '^ *[0-9]+ requests in' | awk '{s+=$1} END {print s}')
echo "requests served (warm-up and run): $n"
# The profile of the process's main thread (the listener's); the other is the loader's thread.
for f in "$dir"/*.001.cpuprofile; do npx tsx test/bench/balancer/profile-summary.ts "$f" 40 "$n"; done
echo "gc: $(grep -c Scavenge "$dir/gc.log") scavenges, $(grep -c Mark "$dir/gc.log") mark-compacts"
grep -oE "(Scavenge|Mark-Compact)[^,]*, [0-9.]+ / [0-9.]+ ms" "$dir/gc.log" | awk '{print $(NF-3)}' | sort -n | awk '{a[NR]=$1} END {if (NR) print "gc pause ms: median", a[int(NR/2)+1], "p90", a[int(NR*0.9)+1], "max", a[NR]}'
