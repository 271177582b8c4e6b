"""How much memory this machine has free, for the decisions that must not run it out of memory."""

import os


def available_memory(meminfo="/proc/meminfo"):
    """Bytes of memory available to a new allocation (Linux's MemAvailable), or None where unknown.

    MemAvailable counts the page cache the kernel would give back, which free memory alone does not;
    without /proc (macOS, Windows) the free physical pages are the estimate.
    """
    try:
        with open(meminfo, encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the file says kB
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
