#!/usr/bin/env bash
# demo.sh - the README's first command: build volley, then (until delivery
# exists) enqueue a 10,000-recipient sample campaign over 50 domains into a
# fresh queue and print `volley queue stats`. The queue is left in
# build/demo-data for `volley queue ls|show --data build/demo-data`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

data=build/demo-data
rm -rf "$data" build/demo-campaign
mkdir -p build/demo-campaign
rcpts=build/demo-campaign/rcpts.txt
msg=build/demo-campaign/message.eml
{
    echo "# sample campaign: 10,000 recipients over 50 domains"
    for d in $(seq 1 50); do
        for u in $(seq 1 200); do
            echo "subscriber$u@list$d.example"
        done
    done
} > "$rcpts"
cat > "$msg" <<'MSG'
From: Volley Demo <news@sender.example>
Subject: The volley demo newsletter
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Hello,

this is the sample campaign that scripts/demo.sh queues: one message,
10,000 recipients, 50 domains. Date and Message-ID are added at injection.
MSG

echo "== volley enqueue: $(grep -vc '^#' "$rcpts") recipients"
./build/volley enqueue --data "$data" --from news@sender.example --rcpts "$rcpts" "$msg"
echo "== volley queue stats"
./build/volley queue stats --data "$data" --top 5
