#!/bin/sh
# Runs every benchmark: bench/run.sh BENCH_DIR BIN_DIR
set -eu
bench_dir=$1
helper_dir=$(dirname "$bench_dir")/tests
echo "## protocol layer"
"$bench_dir/rpc_bench" "$helper_dir"
