"""python -m syncxr.report <sweep dir>: results.csv and report.md for a finished (or partial) sweep."""

import sys

from .sweep import write_report


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m syncxr.report <sweep dir>")
    csv, md = write_report(argv[0])
    print(f"{csv}\n{md}")


if __name__ == "__main__":
    main()
