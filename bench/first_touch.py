#!/usr/bin/env python3
"""What new memory costs on this machine: touches a fresh anonymous mapping one byte per 4 KB
page, three times over (each time a new mapping), and prints the rate of each.

The first pass gets pages the kernel may have handed back to the host (a VM with free page
reporting or a balloon); later passes mostly get pages just freed by the pass before. On a VM
that reports free pages the first pass is many times slower: that is what scenario 3 pays
for every byte the gateway's store grows by (see "Memory churn" in bench/README.md).

Usage: bench/first_touch.py [MiB, default 1024] [--no-thp] [--brief]
(--brief: one line, first pass against the best later pass, for bench/run's header)
"""
import mmap
import sys
import time

PAGE = 4096


def touch(size: int, thp: bool) -> float:
    """Seconds to write one byte in each 4 KB page of a new mapping of `size` bytes."""
    m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if thp and hasattr(mmap, "MADV_HUGEPAGE"):
        m.madvise(mmap.MADV_HUGEPAGE)
    start = time.perf_counter()
    for i in range(0, size, PAGE):
        m[i] = 1
    took = time.perf_counter() - start
    m.close()
    return took


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    mib = int(args[0]) if args else 1024
    thp = "--no-thp" not in sys.argv
    size = mib << 20
    kind = "transparent huge pages allowed" if thp else "no huge pages"
    per_page = [touch(size, thp) / (size // PAGE) * 1e6 for _ in range(3)]
    if "--brief" in sys.argv:
        print(f"{per_page[0]:.2f} us per 4 KB page on first touch, {min(per_page[1:]):.2f} "
              f"when touched again ({mib} MiB, {kind})")
        return
    print(f"{mib} MiB, {kind}")
    for n, us in enumerate(per_page):
        print(f"  pass {n + 1}: {PAGE / us / 1e3:5.2f} GB/s, {us:5.2f} us per 4 KB page")


if __name__ == "__main__":
    main()
