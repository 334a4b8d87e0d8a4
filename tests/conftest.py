import os
import sys

# Tests import configs/ and tests/helpers.py as top-level modules.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
