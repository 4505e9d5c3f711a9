#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/report.py METRICS OUT.json COMMAND: the table of ratios (stdout) and its JSON."""
import datetime
import json
import statistics
import sys


def main():
    metrics_file, out_file, command = sys.argv[1:4]
    m = {}
    for line in open(metrics_file):
        k, _, v = line.strip().partition(" ")
        try:
            m[k] = float(v)
        except ValueError:
            m[k] = v

    def g(k):
        v = m.get(k)
        return v if isinstance(v, float) else None

    rows = []

    def row(what, n2p, ref, ratio, target, ok, unit=""):
        rows.append({"what": what, "n2p": n2p, "reference": ref, "ratio": ratio,
                     "target": target, "met": ok, "unit": unit})

    def div(a, b):
        return None if a is None or b in (None, 0) else a / b

    for name, label, target in (("lan", "1 stream, LAN (no added delay)", 0.5),
                                ("rtt20", "1 stream, 20 ms RTT", 0.9),
                                ("rtt50", "1 stream, 50 ms RTT", 0.9),
                                ("rtt50-loss1", "1 stream, 50 ms RTT + 1 % loss", 0.7)):
        n, t = g(f"{name}.n2p_MBps"), g(f"{name}.tcp_MBps")
        r = div(n, t)
        row(f"{label} (measured RTT {g(name + '.rtt_ms')} ms)", n, t, r, f">= {target} x kernel TCP",
            r is not None and r >= target, "MB/s")

    lo, hi = g("fair.min_over_mean"), g("fair.max_over_mean")
    row("8 streams, slowest / fastest vs mean", lo, hi, None, "each within 2x of the mean",
        lo is not None and lo >= 0.5 and hi <= 2.0)
    row("8 streams beside a stuck reader: all complete", m.get("fair.ok"), None, None, "all complete",
        m.get("fair.ok") == "True", f"{g('fair.total_MBps')} MB/s total")

    def runs(k):
        v = m.get(k)
        if v is None:
            return None
        try:
            return [float(x) for x in str(v).split(",") if x]
        except ValueError:
            return None

    def paired(ref, n2p):
        # The daemon slows down from round to round (the same paths added and
        # deleted again); every method runs once per round, so compare within
        # a round and take the median of those ratios.
        a, b = runs(ref), runs(n2p)
        if not a or not b or len(a) != len(b) or 0 in b:
            return None
        return statistics.median(x / y for x, y in zip(a, b))

    for v, label, target in (("BIG", f"nix copy, 1 path of {int(g('nix.big_mb') or 1024)} MiB", 0.85),
                             ("SMALL", f"nix copy, {int(g('nix.small_n') or 10000):,} small files", 0.85),
                             ("WIDE", f"nix copy, wide closure of {int(g('nix.wide_n') or 1000):,} paths", 0.9)):
        n, d, s = g(f"nix.{v}.n2p_s"), g(f"nix.{v}.direct_s"), g(f"nix.{v}.ssh_s")
        r = paired(f"nix.{v}.direct_runs", f"nix.{v}.n2p_runs")
        if r is None:
            r = div(d, n)
        row(f"{label}: vs direct socket", n, d, r, f">= {target}", r is not None and r >= target, "s")
        r2 = paired(f"nix.{v}.ssh_runs", f"nix.{v}.n2p_runs")
        if r2 is None:
            r2 = div(s, n)
        row(f"{label}: vs ssh-ng", n, s, r2, "> 1 (faster)", r2 is not None and r2 > 1, "s")
        for how in ("direct", "ssh", "n2p"):
            row(f"{label}: CPU seconds, whole machine, {how}", g(f"nix.{v}.{how}_cpu_s"), None, None,
                "(reported)", None, "s")

    for name, label in (("lan", "LAN"), ("rtt20", "20 ms RTT")):
        n, s = g(f"{name}.rr_n2p_ms"), g(f"{name}.rr_relay_ms")
        r = div(n, s)
        row(f"request/response round trip, {label}: n2p vs socat relay", n, s, r, "<= 1.2",
            r is not None and r <= 1.2, "ms")
        # A new connection costs (connect + one request) - (one request on an open
        # connection); the sink's own share (its accept and thread, measured
        # straight at its socket) is taken off, in round trips of the path.
        rtt = g(f"{name}.rr_tcp_ms")
        cd, rd = g(f"{name}.connect_direct_ms"), g(f"{name}.rr_direct_ms")
        sink = None if cd is None or rd is None else cd - rd
        for kind in ("n2p", "relay"):
            c, rr = g(f"{name}.connect_{kind}_ms"), g(f"{name}.rr_{kind}_ms")
            extra = div(None if c is None or rr is None or sink is None else c - rr - sink, rtt)
            if kind == "n2p":
                row(f"new connection, {label}: extra round trips (n2p)", c, rr, extra, "<= 1",
                    extra is not None and extra <= 1.0, "ms")
            else:
                row(f"new connection, {label}: extra round trips (socat relay over TCP)", c, rr, extra,
                    "(reference)", None, "ms")

    for name in ("lan", "rtt20", "rtt50", "rtt50-loss1"):
        row(f"CPU seconds per GiB, n2p client + worker, {name}", g(f"{name}.n2p_cpu_s_per_GiB"), None, None,
            "(reported)", None, "s/GiB")
    for k, label in (("worker_idle", "n2pd worker RSS, idle session"), ("worker_busy", "n2pd worker RSS, 8 busy streams + 1 stuck"),
                     ("client_idle", "n2pctl connect RSS, idle"), ("client_busy", "n2pctl connect RSS, 8 busy streams + 1 stuck")):
        v = g(f"mem.{k}_rss_kib")
        row(label, None if v is None else round(v / 1024, 1), None, None, "bounded (reported)", None, "MiB")

    def fmt(x):
        if x is None:
            return "-"
        if isinstance(x, float):
            return f"{x:.2f}"
        return str(x)

    w = max(len(r["what"]) for r in rows)
    print(f"{'comparison':<{w}}  {'n2p':>9}  {'reference':>9}  {'ratio':>6}  {'target':<26} met")
    for r in rows:
        met = "-" if r["met"] is None else ("yes" if r["met"] else "NO")
        print(f"{r['what']:<{w}}  {fmt(r['n2p']):>9}  {fmt(r['reference']):>9}  {fmt(r['ratio']):>6}  "
              f"{r['target']:<26} {met}  {r['unit']}")
    print(f"machine: {int(g('machine.cpus') or 0)} CPUs, load average {m.get('machine.loadavg')} at start, "
          f"{m.get('machine.loadavg_end')} at the end")

    doc = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "command": command, "rows": rows, "metrics": m}
    with open(out_file, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"written: {out_file}")


if __name__ == "__main__":
    main()
