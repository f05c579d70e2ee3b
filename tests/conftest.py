import os
import warnings

import pytest

os.environ.setdefault("EVIT_LOCK_DIR", os.path.join(os.path.dirname(__file__), "..", "runs", ".test-locks"))
warnings.filterwarnings("ignore", category=FutureWarning)


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # torch missing is a setup error that the imports will report
        has_cuda = False
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none on this machine")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip)
