"""
C{python -m chatservice.bench}: run the load benchmark (see L{chatservice.bench}).
"""

from chatservice.bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
