#!/usr/bin/env bash
# demo.sh - the README's first command: build volley and run the main job on the
# embedded default campaign. (Grows with the engine: see the issues.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
./build/volley --help
