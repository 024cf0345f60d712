# main.py: the single-channel gateway's entry point (firmware_gateway/README.md): lib/ on
# the path, then gateway.app runs until reset. Deployed next to board.py (a board file
# from boards/, for its pins and LORA settings) and gateway.json.
import sys

if "lib" not in sys.path and "/lib" not in sys.path:
    sys.path.insert(0, "lib")

from gateway import app  # noqa: E402

app.main()
