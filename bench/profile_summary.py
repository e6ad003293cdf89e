"""Top functions of a py-spy ``--format raw`` profile (collapsed stacks): self and total share.

    python -m bench.profile_summary profile.txt [--top 25] [--filter flowmail]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::\d+)?\)$")


def profile_files(report_dir: Path, runs: set[str]) -> list[Path]:
    """The py-spy files of these runs (``profile-<run>-<process>.txt``): a reused report
    folder also holds earlier invocations' files, and the warm-up's."""
    return sorted(path for path in report_dir.glob("profile-*.txt")
                  if path.stem.split("-")[1] in runs)


def summarize(path: Path, top: int = 25) -> str:
    self_time: Counter[str] = Counter()
    total_time: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")]
        samples += count
        self_time[frames[-1]] += count
        for frame in set(frames):
            total_time[frame] += count
    lines = [f"{samples} samples", "", "self %  function"]
    lines += [f"{100 * c / samples:5.1f}  {f}" for f, c in self_time.most_common(top)]
    lines += ["", "total %  function"]
    lines += [f"{100 * c / samples:5.1f}  {f}" for f, c in total_time.most_common(top * 2)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    file = match.group("file")
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{match.group('func')} ({file})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(summarize(args.profile, args.top))


if __name__ == "__main__":
    main()
