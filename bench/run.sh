#!/bin/sh
# Runs every benchmark: bench/run.sh BENCH_DIR BIN_DIR
set -eu
bench_dir=$1
bin_dir=$2
helper_dir=$(dirname "$bench_dir")/tests
echo "## protocol layer"
"$bench_dir/rpc_bench" "$helper_dir"
echo
echo "## storaged"
"$bench_dir/storaged_bench" "$bin_dir"
echo
echo "## cdcd"
"$bench_dir/cdcd_bench" "$bin_dir"
echo
echo "## lcmd"
"$bench_dir/lcmd_bench" "$bin_dir"
