#!/usr/bin/env bash
# Build the bench venv in which the peers' own inference code runs (issue 24, point 9).
#
# Real-ESRGAN (xinntao/Real-ESRGAN, BSD-3-Clause) and BasicSR (XPixelGroup/BasicSR, Apache-2.0)
# are NEVER i2i dependencies: they live in this separate venv and are run only by the scripts in
# tools/peers/ (as subprocesses of tools/bench_peers.py). i2i itself never imports them.
#
#   tools/peers/make_bench_venv.sh [VENV]          # default VENV: /work/benchvenv
#
# Versions: the torch / torchvision of i2i's own venv, so both sides run the same kernels.
# basicsr and realesrgan are installed with --no-deps: their requirements pin old torch / torchvision
# and pull GFPGAN / facexlib (face restoration) that RealESRGANer does not need for plain SR.
# basicsr 1.4.2 imports torchvision.transforms.functional_tensor, a module torchvision removed in
# 0.17 (renamed _functional_tensor); a one-file alias module puts it back, in this venv only.
set -euo pipefail
VENV=${1:-/work/benchvenv}
PY=${PYTHON:-python3.11}

"$PY" -m venv "$VENV"
"$VENV/bin/pip" install torch==2.14.1 torchvision==0.29.1
# what basicsr / realesrgan import on the RealESRGANer path (their setup.py lists more)
"$VENV/bin/pip" install numpy opencv-python-headless pillow scipy scikit-image pyyaml addict future lmdb \
    requests tqdm psutil
"$VENV/bin/pip" install --no-deps basicsr==1.4.2 realesrgan==0.3.0

# torchvision.transforms.functional_tensor -> torchvision.transforms._functional_tensor (the same module object)
SITE=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
cat > "$SITE/torchvision/transforms/functional_tensor.py" <<'PYEOF'
# Alias added by i2i's tools/peers/make_bench_venv.sh: torchvision >= 0.17 renamed this module to
# _functional_tensor; basicsr 1.4.2 still imports the old name.
import sys

from torchvision.transforms import _functional_tensor

sys.modules[__name__] = _functional_tensor
PYEOF

# check: the peer's inference path imports
"$VENV/bin/python" -c "from realesrgan import RealESRGANer; from basicsr.archs.rrdbnet_arch import RRDBNet; \
from realesrgan.archs.srvgg_arch import SRVGGNetCompact; import torch, torchvision; \
print('bench venv ok: torch', torch.__version__, 'torchvision', torchvision.__version__)"
