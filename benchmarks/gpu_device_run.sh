#!/usr/bin/env bash
# The one command to run on a lent GPU machine (the workplace's `device` tool), from the repository root:
#
#     bash benchmarks/gpu_device_run.sh            (device tool: carry [".whl"], timeout_s 600)
#
# That machine has no network and no `pip install -e`: dgbench runs from the working tree (PYTHONPATH), on the
# image's own CUDA torch. Its transformers may not be the tested one (DiffusionGemma needs >= 5.23), so the
# tested wheels are carried in .whl/ (.gitignore'd), prepared on this side with
#
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#         --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#         -d .whl transformers==5.24.0 tokenizers==0.23.3        # versions: constraints.txt
#
# The report is written under $OUT (what the device tool brings back) after every section, so a run cut short
# keeps what it measured; the log goes there too. Copy the folder to reports/gpu/ and commit it.
set -uo pipefail
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
out="${OUT:-reports/gpu}"
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH="/tmp/site:$PYTHONPATH" || { echo "gpu_device_run: installing .whl/ failed" >&2; exit 1; }
fi
python3 - <<'EOF' 2>&1 | tee "$out/environment.txt"
import torch, transformers
print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__)
print("gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
from transformers import DiffusionGemmaForBlockDiffusion  # noqa: F401  (fails here, not minutes in)
EOF
[ "${PIPESTATUS[0]}" = 0 ] || { echo "gpu_device_run: the environment above cannot run dgbench (carry .whl/)" >&2; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv 2>&1 | tee -a "$out/environment.txt"
python3 benchmarks/gpu_validation.py --out "$out" --budget-s "${BUDGET_S:-420}" "$@" 2>&1 | tee "$out/log.txt"
exit "${PIPESTATUS[0]}"
