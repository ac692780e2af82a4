"""`python -m rpa.sandbox serve --dir DIR`: the foreground process behind `rpa sandbox up`."""

import argparse
from pathlib import Path

from rpa.sandbox.runtime import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m rpa.sandbox")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the stand-ins until SIGTERM")
    serve_parser.add_argument("--dir", type=Path, default=Path(".rpa-sandbox"))
    serve_parser.add_argument("--latency-ms", type=float, default=0.0,
                              help="delay added to every platform reply, in milliseconds")
    args = parser.parse_args()
    serve(args.dir, latency_seconds=args.latency_ms / 1000)


if __name__ == "__main__":
    main()
