"""The desktop app (PySide6). The only package of musicsim that imports Qt.

Entry point: :func:`musicsim.gui.app.run`. Importing this package loads no Qt module.
"""

import os
import sys

# Idle OpenMP threads sleep instead of spinning (set before torch loads): a spinning pool
# takes the cores the event loop needs between training steps.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Hand the GIL over every 1 ms instead of 5 ms: while a worker thread runs Python (training's
# epoch ends, the scan's bookkeeping), each Qt callback of the event loop may wait up to one
# switch interval for the GIL. (The 200-300 ms stalls once blamed on this were full garbage
# collections, fixed by gc.freeze in backend.warm_up; 0.2 ms here did not change them.)
sys.setswitchinterval(0.001)
