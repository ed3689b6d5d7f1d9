#!/usr/bin/env python3
"""Writes a sales CSV of about MB megabytes (quoted commas and quotes
included) for the benchmarks: gen-csv.py PATH MB"""
import random
import sys

path, mb = sys.argv[1], int(sys.argv[2])
target = mb * 1024 * 1024
random.seed(7)
regions = ["north", "south", "east", "west"]
products = ["notebook", "pencil", "stapler, heavy-duty", "eraser", "marker \"fine\"", "ruler"]
with open(path, "w") as f:
    f.write("sale_id,sold_on,region,product,quantity,unit_price\n")
    i, written = 0, 0
    while written < target:
        lines = []
        for _ in range(10000):
            i += 1
            p = products[i % len(products)]
            p = '"' + p.replace('"', '""') + '"' if ("," in p or '"' in p) else p
            lines.append(f"{i},2024-{1 + i % 12:02d}-{1 + i % 28:02d},{regions[i % 4]},{p},{i % 50},{(i % 2000) / 100:.2f}\n")
        chunk = "".join(lines)
        f.write(chunk)
        written += len(chunk)
