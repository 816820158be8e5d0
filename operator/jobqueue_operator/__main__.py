"""`python -m jobqueue_operator`: the operator, cluster-wide, with kopf's liveness endpoint."""

from __future__ import annotations

import argparse
import logging

import kopf

import jobqueue_operator  # noqa: F401  (registers the handlers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="jobqueue-operator", description=__doc__)
    parser.add_argument("--liveness", default="http://0.0.0.0:8080/healthz")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    kopf.run(clusterwide=True, standalone=True, liveness_endpoint=args.liveness)


if __name__ == "__main__":
    main()
