#!/usr/bin/env python3
"""Groups a flat `perf report` by component: share of all samples per component.

usage: perf_categories.py PERF_DATA [COMM]

Percentages are of every sample in the file (both cores), so they add up to the thread's share.
In a VM without a PMU, perf samples on the timer: kernel time lands on the point where
interrupts are re-enabled, which is why thread wake-ups show as _raw_spin_unlock_irqrestore
and context switches as finish_task_switch. Read "kernel" as syscalls, wake-ups and switches.
"""
import collections
import re
import subprocess
import sys

CATEGORIES = [
    ("ECDSA P-256 (ring)",
     r"nistz256|p256|ecp_|ring_core.*(mont|point|scalar|select|bn_|limbs)|fiat"),
    ("SHA-2", r"sha256|sha512|sha2"),
    ("X.509/DER parsing", r"x509_parser|asn1_rs|der_parser|nom::"),
    ("certificate building (rcgen, yasna)", r"rcgen|yasna"),
    ("PEM, base64", r"pem::|base64"),
    ("JSON (serde)", r"serde_json|serde::|serde_core|serde_path_to_error"),
    ("SQLite", r"sqlite3|pcache|btree|Vdbe|wal[A-Z]|pager|balance"),
    ("sqlx", r"sqlx|hashlink"),
    ("HTTP (hyper, axum, tower)", r"hyper|axum|tower|http::|httparse|matchit"),
    ("tokio, futures, channels", r"tokio|futures|flume|parking|crossbeam"),
    ("malloc, memcpy (libc)",
     r"malloc|free|_int_|realloc|memmove|memcpy|memset|memcmp|unlink_chunk|tcache|calloc"),
    ("kernel (syscalls, wake-ups, switches)", r"\[k\]"),
]


def main():
    data = sys.argv[1]
    args = ["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym", "--stdio"]
    if len(sys.argv) > 2:
        args += ["--comm", sys.argv[2]]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    totals = collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+(.*)", line)
        if not m:
            continue
        text = m.group(2) + " " + m.group(3)
        for name, rx in CATEGORIES:
            if re.search(rx, text):
                totals[name] += float(m.group(1))
                break
        else:
            totals["other"] += float(m.group(1))
    for name, pct in totals.most_common():
        print(f"{pct:6.1f}%  {name}")
    print(f"{sum(totals.values()):6.1f}%  total")


if __name__ == "__main__":
    main()
