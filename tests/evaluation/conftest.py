import sys
from pathlib import Path

# scripted_models and toy_bank sit beside this file; the suite runs with --import-mode=importlib, which leaves
# sys.path alone.
sys.path.insert(0, str(Path(__file__).resolve().parent))
