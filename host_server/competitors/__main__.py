"""Measures every competitor in one run and prints JSON:
python -m host_server.competitors [--seconds S]   (from the project root)"""
import argparse
import json
import statistics

from . import edhoc, priorart, tls13


def main():
    parser = argparse.ArgumentParser(prog="python -m host_server.competitors")
    parser.add_argument("--seconds", type=float, default=2.0, help="per rate measurement")
    parser.add_argument("--repeat", type=int, default=3, help="rates: median of N runs")
    args = parser.parse_args()

    def median(fn):
        return round(statistics.median(fn() for _ in range(args.repeat)), 1)

    s = args.seconds
    out = {
        "edhoc_sizes": {v: edhoc.edhoc_messages(v) for v in edhoc.VARIANTS},
        "tls13_flights": {p: tls13.tls13_messages(p) for p in tls13.PROFILES},
        "tls13_flights_no_middlebox_compat": {
            p: tls13.tls13_messages(p, middlebox_compat=False) for p in tls13.PROFILES},
        "tls13_new_session_tickets": tls13.tls13_handshake("minimal", True)["post_handshake"],
        "prior_art_sizes": priorart.prior_art_messages(),
        "edhoc_per_second": {
            side: median(lambda side=side: edhoc.edhoc_handshakes_per_second(s, side=side))
            for side in ("both", "responder")},
        "tls13_per_second": {},
    }
    for profile in ("minimal", "typical"):
        rates = {side: median(lambda side=side, profile=profile: tls13.tls13_handshakes_per_second(
            s, profile, "memory", side=side)) for side in ("both", "server")}
        runs = [tls13.loopback_run(s, profile) for _ in range(args.repeat)]
        rates["loopback_per_server_cpu_second"] = round(statistics.median(
            r["per_server_cpu_second"] for r in runs), 1)
        rates["loopback_per_wall_second"] = round(statistics.median(
            r["per_wall_second"] for r in runs), 1)
        out["tls13_per_second"][profile] = rates
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
